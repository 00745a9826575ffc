export {
  createExecService,
  defaultConcurrency,
  EXEC_TEMPLATE,
  EXEC_BUILD_TAG,
  type ExecService,
  type ExecServiceOptions,
  type ExecRequest,
  type ExecResult,
  type ExecSessionInfo,
  type ExecServiceMetrics,
} from './service.js';
export { TemplateNotFoundError } from './errors.js';
export { execRoutes, createExecMcpServer, type ExecRoutesOptions, type ExecMcpOptions } from './transport/index.js';
