export { TemplateRegistry, compileTemplate, BUILTIN_TEMPLATES, type Template, type TemplateOptions } from './registry.js';
export { loadTemplateFile } from './file.js';
