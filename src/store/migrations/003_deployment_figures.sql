-- What `ps` shows of every deployment, kept in its row by the step's transaction, so that listing
-- deployments is one query however many orders they hold.
ALTER TABLE deployments ADD COLUMN orders_count int NOT NULL DEFAULT 0;
ALTER TABLE deployments ADD COLUMN fills_count int NOT NULL DEFAULT 0;
ALTER TABLE deployments ADD COLUMN equity double precision;
