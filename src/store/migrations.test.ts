import { describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR, loadMigrations, splitStatements } from './migrations.js';
import { parseInt8, parseNumeric } from './values.js';

describe('splitStatements', () => {
  it.each([
    ['SELECT 1; SELECT 2;', [{ sql: 'SELECT 1', line: 1 }, { sql: 'SELECT 2', line: 1 }]],
    ['-- a comment; not a statement\nSELECT 1;\n\n  SELECT 2', [{ sql: '-- a comment; not a statement\nSELECT 1', line: 2 }, { sql: 'SELECT 2', line: 4 }]],
    ["INSERT INTO t VALUES ('a;b', 'it''s; ok');", [{ sql: "INSERT INTO t VALUES ('a;b', 'it''s; ok')", line: 1 }]],
    ['SELECT "odd;name" FROM t; /* x; y */', [{ sql: 'SELECT "odd;name" FROM t', line: 1 }]],
    ['CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\nSELECT $$;$$;', [
      { sql: 'CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql', line: 1 },
      { sql: 'SELECT $$;$$', line: 2 },
    ]],
    ['SELECT $1::int;', [{ sql: 'SELECT $1::int', line: 1 }]],
    ['  \n-- only a comment\n;', []],
  ])('%j', (sql, expected) => {
    expect(splitStatements(sql)).toEqual(expected);
  });
});

describe('loadMigrations', () => {
  it('reads the shipped migrations from beside the module, in order, starting at 001', () => {
    const migrations = loadMigrations(MIGRATIONS_DIR);
    expect(migrations.map((migration) => [migration.version, migration.name, migration.file])).toEqual([
      [1, 'control_plane', '001_control_plane.sql'],
      [2, 'step_replay', '002_step_replay.sql'],
      [3, 'deployment_figures', '003_deployment_figures.sql'],
      [4, 'control_plane_lease', '004_control_plane_lease.sql'],
      [5, 'deployment_replicas', '005_deployment_replicas.sql'],
      [6, 'step_account', '006_step_account.sql'],
      [7, 'close_step_function', '007_close_step_function.sql'],
      [8, 'venue_history_chunks', '008_venue_history_chunks.sql'],
      [9, 'fenced_close_step', '009_fenced_close_step.sql'],
    ]);
    expect(splitStatements(migrations[0]!.sql).length).toBe(11);
  });
});

describe('value parsers', () => {
  it.each([
    ['0', 0],
    ['-9007199254740991', -9007199254740991],
    ['9007199254740991', 9007199254740991],
    ['9007199254740992', 9007199254740992n],
    ['-9223372036854775808', -9223372036854775808n],
  ])('int8 %s', (text, expected) => {
    expect(parseInt8(text)).toBe(expected);
  });
  it('numeric as number', () => {
    expect([parseNumeric('1.5'), parseNumeric('-0.000001'), parseNumeric('NaN')]).toEqual([1.5, -0.000001, Number.NaN]);
  });
});
