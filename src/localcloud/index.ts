export { startLocalCloud, ENVD_PORT, INTERPRETER_PORT, type LocalCloud, type LocalCloudOptions } from './server.js';
export { ENVD_VERSION } from './api/routes.js';
export { LOCAL_INTERPRETER_MARKER } from './interpreter/index.js';
export { LocalCloudError, SandboxNotFoundError, IsolationUnavailableError } from './errors.js';
export { TemplateRegistry, compileTemplate, loadTemplateFile, type Template, type TemplateOptions } from './templates/index.js';
export { probeIsolation, type IsolationSupport } from './isolation/index.js';
export type { LocalSandbox, SandboxManager, SandboxMetric, SandboxNetwork } from './sandboxes/index.js';
