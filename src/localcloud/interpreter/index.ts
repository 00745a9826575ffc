export { createInterpreterRouter, type InterpreterRouter } from './routes.js';
export { Kernel, kernelCommand, KERNELS_HOST_DIR, KERNELS_SANDBOX_DIR, LOCAL_INTERPRETER_MARKER, type KernelLanguage } from './kernel.js';
