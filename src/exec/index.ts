export {
  createExecService,
  EXEC_TEMPLATE,
  EXEC_BUILD_TAG,
  type ExecService,
  type ExecServiceOptions,
  type ExecRequest,
  type ExecResult,
  type ExecSessionInfo,
  type ExecServiceMetrics,
} from './service.js';
export { startExecHttpServer, createExecMcpServer, type ExecHttpOptions, type ExecHttpServer, type ExecMcpOptions } from './transport/index.js';
