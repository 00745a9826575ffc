import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../core/index.js';
import { StoreError, mapDriverError } from './errors.js';
import type { Queryable } from './store.js';

/** The migrations shipped with tradeswarm, read at run time from beside this file (the build copies them to dist/store/migrations/: scripts/build.ts). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

/** One migration file. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly file: string;
  readonly sql: string;
}

/** One statement of a migration, with the line of the file it starts on. */
export interface Statement {
  readonly sql: string;
  readonly line: number;
}

const MIGRATION_FILE = /^(\d{3})_([a-z0-9_]+)\.sql$/;

/**
 * The migrations in `dir`, by version. Files must be named `NNN_name.sql` (other files are ignored).
 * @throws StoreError when the folder cannot be read or two files share a version.
 */
export function loadMigrations(dir: string): Migration[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    throw new StoreError(`cannot read the migrations folder ${dir}: ${(error as Error).message}`, { cause: error });
  }
  const migrations: Migration[] = [];
  for (const file of names.sort()) {
    const match = MIGRATION_FILE.exec(file);
    if (match === null) continue;
    const version = Number(match[1]);
    const twin = migrations.find((migration) => migration.version === version);
    if (twin !== undefined) throw new StoreError(`migrations ${twin.file} and ${file} in ${dir} share version ${version}: renumber one`);
    migrations.push({ version, name: match[2]!, file, sql: readFileSync(join(dir, file), 'utf8') });
  }
  return migrations;
}

/**
 * Splits SQL into statements at the semicolons that end them: not those in quotes ('…', "…"),
 * dollar-quoted bodies ($$…$$, $tag$…$tag$) or comments (-- and block comments). Empty statements go.
 */
export function splitStatements(sql: string): Statement[] {
  const statements: Statement[] = [];
  let start = 0;
  let i = 0;
  const push = (end: number): void => {
    const text = sql.slice(start, end);
    if (stripComments(text).trim() === '') return;
    // The line of its first code, past blank lines and leading comments.
    const lines = text.split('\n');
    const first = lines.findIndex((line) => !/^\s*(--.*)?$/.test(line));
    const line = sql.slice(0, start).split('\n').length + Math.max(first, 0);
    statements.push({ sql: text.trim(), line });
  };
  while (i < sql.length) {
    const char = sql[i]!;
    const next = sql[i + 1];
    if (char === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end + 1;
    } else if (char === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? sql.length : end + 2;
    } else if (char === "'" || char === '"') {
      const end = sql.indexOf(char, i + 1);
      i = end === -1 ? sql.length : end + 1; // a doubled quote ('it''s') closes and reopens: the same split
    } else if (char === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (tag === null) {
        i++;
      } else {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        i = end === -1 ? sql.length : end + tag[0].length;
      }
    } else if (char === ';') {
      push(i);
      i++;
      start = i;
    } else {
      i++;
    }
  }
  push(sql.length);
  return statements;
}

function stripComments(text: string): string {
  return text.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
}

/** The first line of a statement that is not a comment, for error messages. */
function firstLine(statement: Statement): string {
  const line = statement.sql.split('\n').find((text) => !/^\s*(--.*)?$/.test(text)) ?? statement.sql;
  return line.trim();
}

/** A connection the migrations run on: every query on the same session, so the advisory lock holds. */
export interface MigrationSession extends Queryable {
  /** Where the database is, for messages: `the PGlite data dir /var/…` or a URL without its password. */
  readonly where: string;
}

/** Advisory lock key class for migrations (the second key is the schema's hash). */
const LOCK_CLASS = 0x7473; // 'ts'

/**
 * Brings the database up to the newest migration: under a session advisory lock (so two processes
 * starting at once apply each file once), creates `schema` if given and `schema_migrations`, refuses a
 * database that has a version with no file here, then applies each missing file in its own transaction,
 * in order, recording it. Returns the versions applied.
 * @throws StoreError naming the file, the line and the first line of the failing statement (the
 *   database stays at the version before that file), or naming the unknown versions.
 */
export async function migrate(session: MigrationSession, migrations: readonly Migration[], schema: string | undefined, logger: Logger): Promise<number[]> {
  const run = async (sql: string, params?: readonly unknown[]): Promise<Record<string, unknown>[]> => {
    try {
      return await session.query(sql, params);
    } catch (error) {
      throw mapDriverError(error, `migrating ${session.where}`);
    }
  };
  await run('SELECT pg_advisory_lock($1::int, hashtext($2::text))', [LOCK_CLASS, schema ?? '']);
  try {
    if (schema !== undefined) await run(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await run(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const applied = await run('SELECT version, name FROM schema_migrations ORDER BY version');
    const known = new Set(migrations.map((migration) => migration.version));
    const unknown = applied.filter((row) => !known.has(Number(row.version)));
    if (unknown.length > 0) {
      const list = unknown.map((row) => `${String(row.version).padStart(3, '0')}_${String(row.name)}`).join(', ');
      const newest = migrations.at(-1);
      throw new StoreError(
        `${session.where} has migration${unknown.length === 1 ? '' : 's'} ${list} that this tradeswarm does not know ` +
          `(its newest is ${newest === undefined ? 'none' : newest.file}): a newer tradeswarm wrote it. Upgrade tradeswarm, ` +
          'or point it at another database; nothing was changed',
      );
    }
    const done = new Set(applied.map((row) => Number(row.version)));
    const newlyApplied: number[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await applyOne(session, migration);
      newlyApplied.push(migration.version);
      logger.info({ version: migration.version, file: migration.file, where: session.where }, 'applied migration');
    }
    return newlyApplied;
  } finally {
    await run('SELECT pg_advisory_unlock($1::int, hashtext($2::text))', [LOCK_CLASS, schema ?? '']);
  }
}

async function applyOne(session: MigrationSession, migration: Migration): Promise<void> {
  await session.query('BEGIN');
  try {
    for (const statement of splitStatements(migration.sql)) {
      try {
        await session.query(statement.sql);
      } catch (error) {
        const cause = mapDriverError(error, 'PostgreSQL said');
        throw new StoreError(
          `migration ${migration.file} failed at line ${statement.line} (${firstLine(statement)}): ${cause.message}. ` +
            `Nothing of ${migration.file} was applied: ${session.where} stays at the version before it. Fix the file and open the store again`,
          { cause, ...(cause.code === undefined ? {} : { code: cause.code }) },
        );
      }
    }
    await session.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
    await session.query('COMMIT');
  } catch (error) {
    await session.query('ROLLBACK').catch(() => undefined);
    throw mapDriverError(error, `migration ${migration.file}`);
  }
}
