export { createInterpreterRouter, type InterpreterRouter } from './routes.js';
export { Kernel, kernelCommand, KERNELS_HOST_DIR, KERNELS_SANDBOX_DIR, type KernelLanguage } from './kernel.js';
