-- The control plane's state (DESIGN decisions 9 and 10): deployments and their specs, agents and their
-- latest checkpoints, the steps, the order outbox, fills, positions, equity and an append-only event log.
-- Times are milliseconds since the epoch (bigint, *_ms), from the control plane's injected clock.
-- Prices and quantities are double precision, so a JS number goes in and comes back the same.

CREATE TABLE deployments (
  id text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  env text NOT NULL,
  spec_version int NOT NULL,
  desired text NOT NULL CHECK (desired IN ('running', 'stopped')),
  state text NOT NULL,
  closed_steps int NOT NULL DEFAULT 0,
  snapshot jsonb,
  report jsonb,
  error text,
  created_at_ms bigint NOT NULL,
  updated_at_ms bigint NOT NULL
);

CREATE TABLE deployment_specs (
  deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
  version int NOT NULL,
  spec_yaml text NOT NULL,
  base_dir text NOT NULL,
  created_at_ms bigint NOT NULL,
  PRIMARY KEY (deployment_id, version)
);

CREATE TABLE agents (
  deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
  agent_id text NOT NULL,
  kind text NOT NULL,
  placement text NOT NULL,
  lifecycle text NOT NULL,
  restarts int NOT NULL DEFAULT 0,
  updated_at_ms bigint NOT NULL,
  PRIMARY KEY (deployment_id, agent_id)
);

-- The latest checkpoint of each agent, upserted.
CREATE TABLE checkpoints (
  deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
  agent_id text NOT NULL,
  step int NOT NULL,
  replay_from int NOT NULL,
  state text NOT NULL,
  created_at_ms bigint NOT NULL,
  PRIMARY KEY (deployment_id, agent_id)
);

CREATE TABLE steps (
  deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
  idx int NOT NULL,
  time_ms bigint NOT NULL,
  submissions jsonb NOT NULL,
  signals jsonb NOT NULL,
  closed_at_ms bigint,
  PRIMARY KEY (deployment_id, idx)
);

-- The outbox: an order is written here before it reaches the venue.
CREATE TABLE orders (
  deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
  client_order_id text NOT NULL,
  step int NOT NULL,
  agent_id text NOT NULL,
  symbol text NOT NULL,
  side text NOT NULL,
  quantity double precision NOT NULL,
  status text NOT NULL,
  reason text,
  created_at_ms bigint NOT NULL,
  PRIMARY KEY (deployment_id, client_order_id)
);

CREATE TABLE fills (
  deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
  seq int NOT NULL,
  client_order_id text NOT NULL,
  step int NOT NULL,
  symbol text NOT NULL,
  side text NOT NULL,
  quantity double precision NOT NULL,
  price double precision NOT NULL,
  fee double precision NOT NULL,
  time_ms bigint NOT NULL,
  PRIMARY KEY (deployment_id, seq)
);

CREATE TABLE positions (
  deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
  symbol text NOT NULL,
  quantity double precision NOT NULL,
  PRIMARY KEY (deployment_id, symbol)
);

CREATE TABLE equity (
  deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
  step int NOT NULL,
  time_ms bigint NOT NULL,
  equity double precision NOT NULL,
  cash double precision NOT NULL,
  PRIMARY KEY (deployment_id, step)
);

-- Appended, never rewritten.
CREATE TABLE events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  deployment_id text NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
  at_ms bigint NOT NULL,
  step int,
  kind text NOT NULL,
  agent_id text,
  detail text
);

CREATE INDEX events_deployment_id_idx ON events (deployment_id, id);
