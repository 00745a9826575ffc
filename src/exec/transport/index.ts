export { execRoutes, type ExecRoutesOptions } from './http.js';
export { createExecMcpServer, type ExecMcpOptions } from './mcp.js';
