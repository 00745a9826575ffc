import { constants } from 'node:fs';
import { access, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { InvalidInputError } from '../core/index.js';

/**
 * Checks, before a run, that `--html`'s file can be written: its folder exists and may be written,
 * and the path is not a folder. A long run should not end with a page it cannot save.
 * @throws InvalidInputError naming `--html`, saying what is wrong.
 */
export async function checkReportPath(file: string): Promise<void> {
  const folder = dirname(resolve(file));
  const folderStat = await stat(folder).catch(() => null);
  if (folderStat === null || !folderStat.isDirectory()) throw new InvalidInputError('--html', `cannot write ${JSON.stringify(file)}: the folder ${folder} does not exist; create it or give another path`);
  const fileStat = await stat(file).catch(() => null);
  if (fileStat?.isDirectory() === true) throw new InvalidInputError('--html', `${JSON.stringify(file)} is a folder; give a file name, e.g. ${JSON.stringify(`${file.replace(/\/+$/, '')}/report.html`)}`);
  await access(fileStat === null ? folder : file, constants.W_OK).catch((error: unknown) => {
    throw new InvalidInputError('--html', `cannot write ${JSON.stringify(file)}: ${error instanceof Error ? error.message : String(error)}; give a path you may write to`, { cause: error });
  });
}

/**
 * Writes a page to `--html`'s file.
 * @throws InvalidInputError naming `--html` when the file cannot be written.
 */
export async function writeReportPage(file: string, html: string): Promise<void> {
  try {
    await writeFile(file, html);
  } catch (error) {
    throw new InvalidInputError('--html', `cannot write ${JSON.stringify(file)}: ${error instanceof Error ? error.message : String(error)}; give a path you may write to`, { cause: error });
  }
}
