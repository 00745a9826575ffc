-- How many processes an operator set each agent of a deployment to run as (`tradeswarm scale`), by
-- agent id: 1 the agent alone, 2 the agent and a hot standby. Agents not named follow the spec's
-- swarm.standby. Stored before it is applied, so a server that resumes the deployment applies it too.
ALTER TABLE deployments ADD COLUMN replicas jsonb NOT NULL DEFAULT '{}'::jsonb;
