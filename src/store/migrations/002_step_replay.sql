-- What a restarted control plane re-applies of each closed step besides its orders requests and
-- signals: the step's bars (a live feed cannot give them again) and who took part in it.
ALTER TABLE steps ADD COLUMN bars jsonb NOT NULL DEFAULT '[]';
ALTER TABLE steps ADD COLUMN participants jsonb NOT NULL DEFAULT '[]';
-- Orders by step, for `tradeswarm orders` and the API.
CREATE INDEX orders_deployment_step_idx ON orders (deployment_id, step);
