import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parse } from 'yaml';
import { InvalidInputError, errorMessage } from '../../core/index.js';
import { type TemplateOptions, compileTemplate } from './registry.js';

const MAX_TEMPLATE_FILES = 10_000;

/** Reads every regular file under `root` as `{ relative path: bytes }`. */
function readTree(root: string, field: string): Record<string, Uint8Array> {
  const files: Record<string, Uint8Array> = {};
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) {
        files[relative(root, path)] = readFileSync(path);
        if (Object.keys(files).length > MAX_TEMPLATE_FILES) throw new InvalidInputError(field, `has more than ${MAX_TEMPLATE_FILES} files; a template is for a small working set`);
      }
    }
  };
  walk(root);
  return files;
}

/**
 * Loads a local template from a YAML (or JSON) file: the fields of {@link TemplateOptions}, plus
 * `filesFrom`, a folder (relative to the file) whose contents are copied into /home/user.
 * @throws InvalidInputError naming the file and field.
 */
export function loadTemplateFile(path: string): TemplateOptions {
  const file = resolve(path);
  let document: unknown;
  try {
    document = parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InvalidInputError(file, `could not be read as a template: ${errorMessage(error)}`);
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new InvalidInputError(file, 'must be a mapping with at least a name, e.g. "name: my-agent"');
  }
  const { filesFrom, files, ...rest } = document as Record<string, unknown>;
  let merged = files;
  if (filesFrom !== undefined) {
    if (typeof filesFrom !== 'string') throw new InvalidInputError(`${file}: filesFrom`, 'must be a folder path, relative to the template file');
    const folder = resolve(dirname(file), filesFrom);
    if (!statSync(folder, { throwIfNoEntry: false })?.isDirectory()) throw new InvalidInputError(`${file}: filesFrom`, `${folder} is not a folder`);
    merged = { ...readTree(folder, `${file}: filesFrom`), ...(files as Record<string, unknown> | undefined) };
  }
  const template = { ...rest, ...(merged === undefined ? {} : { files: merged }) } as TemplateOptions;
  // Checked here as well as when registered, so that the error names the file among several.
  try {
    compileTemplate(template);
  } catch (error) {
    if (error instanceof InvalidInputError) throw new InvalidInputError(`${file}: ${error.field}`, error.detail, { cause: error });
    throw error;
  }
  return template;
}
