-- Leader election between `tradeswarm serve` processes on one PostgreSQL (DESIGN decision 11): one
-- row per lease. A process takes the lease when it is free or expired, in one statement, and renews
-- it; expiry is judged by the database's now(), never by a process's clock. `epoch` rises at every
-- takeover: it is the fencing token every write of the leader checks inside its transaction.
CREATE TABLE control_plane_lease (
  name text PRIMARY KEY,
  holder text NOT NULL,
  epoch bigint NOT NULL,
  -- Where the holder's API answers, for followers to point clients at.
  url text,
  acquired_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
