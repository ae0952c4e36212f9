/**
 * The settings tables of README.md and src/autoscaler/README.md are generated from the rows; a row
 * added or changed without `npm run docs:settings` fails here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DOCUMENTED_TABLES, settingsTable, withGeneratedTable } from '../../src/settings-docs.js';
import { settingRow } from '../../src/shared/settings.js';
import { integer, optionalString } from '../../src/shared/config.js';

describe('generated settings tables', () => {
  for (const table of DOCUMENTED_TABLES) {
    it(`${table.file} carries the table generated from its ${table.rows.length} rows (run npm run docs:settings)`, () => {
      const committed = readFileSync(table.file, 'utf8');
      expect(committed).toBe(withGeneratedTable(committed, table));
      for (const row of table.rows) expect(committed).toContain(`| \`${row.env}\` | \`${row.flag}\``);
    });
  }

  it('renders variable, flags, default and help; null and empty defaults as (none), a shown default as given', () => {
    const setting = settingRow<{ a: number; b: string | null; c: string | null; d: boolean }>();
    const table = settingsTable([
      setting('a', 'ROOMCAST_A_MS', 50, integer(1, 10), 'a | b'),
      setting('b', 'ROOMCAST_B', null, optionalString, 'bee'),
      setting('c', 'ROOMCAST_C', null, optionalString, 'sea', { shownDefault: 'host name' }),
      setting('d', 'ROOMCAST_D', false, () => ({ value: true }), 'dee', { switchFlag: '--d-now' }),
    ]);
    expect(table.split('\n')).toEqual([
      '| variable | flag | default | meaning |',
      '|---|---|---|---|',
      '| `ROOMCAST_A_MS` | `--a-ms` | `50` | a \\| b |',
      '| `ROOMCAST_B` | `--b` | (none) | bee |',
      '| `ROOMCAST_C` | `--c` | host name | sea |',
      '| `ROOMCAST_D` | `--d`, `--d-now` | `false` | dee |',
    ]);
  });

  it('refuses a document without the markers', () => {
    expect(() => withGeneratedTable('# no table here', DOCUMENTED_TABLES[0]!)).toThrow(/markers/);
  });
});
