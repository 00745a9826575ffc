// The control plane's MCP tools (beside `run_code` in `tradeswarm mcp`): clients of `tradeswarm serve`'s
// HTTP API, like the CLI's client commands, through src/client/; apart from it so that those commands do
// not load zod and the MCP schemas.
export { registerControlPlaneTools, CONTROL_PLANE_TOOLS, type ControlPlaneToolsOptions } from './tools.js';
