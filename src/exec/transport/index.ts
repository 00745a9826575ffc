export { startExecHttpServer, type ExecHttpOptions, type ExecHttpServer } from './http.js';
export { createExecMcpServer, type ExecMcpOptions } from './mcp.js';
