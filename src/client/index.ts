// The client of the control plane's HTTP API: what the client commands (deploy, ps, status, orders, logs,
// restart, scale, stop), the MCP tools and the chaos suite call `tradeswarm serve` with. It loads core
// alone (the contract's schemas only as types), so a client command starts about as fast as `--help`.
export {
  ControlPlaneClient,
  DEFAULT_SERVER_URL,
  ServerError,
  type ControlPlaneClientOptions,
  type DeployInput,
  type DeploymentViewAnswer,
  type DeploymentStatusAnswer,
  type OrderAnswer,
  type FillAnswer,
  type EventAnswer,
  type AgentLogAnswer,
  type HealthAnswer,
} from './client.js';
