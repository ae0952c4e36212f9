/**
 * `npm run docs:settings`: writes the settings tables of README.md and src/autoscaler/README.md
 * from the rows (SETTINGS, AUTOSCALER_SETTINGS), between their marker comments, so the docs cannot
 * drift from the code; a unit test fails when a committed table differs from the generated one.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AUTOSCALER_SETTINGS } from './autoscaler/config.js';
import { SETTINGS } from './shared/config.js';
import type { Setting } from './shared/settings.js';

export interface DocumentedTable {
  /** Relative to the repository root. */
  file: string;
  /** The name in the marker comments around the table. */
  name: string;
  rows: readonly Setting<any>[];
}

export const DOCUMENTED_TABLES: readonly DocumentedTable[] = [
  { file: 'README.md', name: 'services', rows: SETTINGS },
  { file: 'src/autoscaler/README.md', name: 'autoscaler', rows: AUTOSCALER_SETTINGS },
];

function shownDefault(s: Setting<any>): string {
  if (s.shownDefault !== undefined) return s.shownDefault;
  const value: unknown = s.default;
  if (value === null || (Array.isArray(value) && value.length === 0)) return '(none)';
  return `\`${Array.isArray(value) ? value.join(',') : String(value)}\``;
}

/** The markdown table of a set of rows: variable, flag(s), default, meaning (the row's help). */
export function settingsTable(rows: readonly Setting<any>[]): string {
  const cell = (text: string) => text.replaceAll('|', '\\|');
  return [
    '| variable | flag | default | meaning |',
    '|---|---|---|---|',
    ...rows.map((s) => {
      const flags = [s.flag, ...(s.switchFlag ? [s.switchFlag] : [])].map((f) => `\`${f}\``).join(', ');
      return `| \`${s.env}\` | ${flags} | ${cell(shownDefault(s))} | ${cell(s.help)} |`;
    }),
  ].join('\n');
}

const begin = (name: string) => `<!-- settings-table:${name} (generated from the rows: npm run docs:settings) -->`;
const end = (name: string) => `<!-- /settings-table:${name} -->`;

/** `text` with the marked table replaced by the generated one. Throws when the markers are missing. */
export function withGeneratedTable(text: string, table: DocumentedTable): string {
  const from = text.indexOf(begin(table.name));
  const to = text.indexOf(end(table.name));
  if (from < 0 || to < from) throw new Error(`${table.file}: markers for the ${table.name} settings table not found`);
  return `${text.slice(0, from)}${begin(table.name)}\n${settingsTable(table.rows)}\n${text.slice(to)}`;
}

function main(): void {
  for (const table of DOCUMENTED_TABLES) {
    const path = join(process.cwd(), table.file);
    const before = readFileSync(path, 'utf8');
    const after = withGeneratedTable(before, table);
    if (after !== before) writeFileSync(path, after);
    process.stdout.write(`${table.file}: ${table.rows.length} settings${after === before ? ', unchanged' : ', rewritten'}\n`);
  }
}

if (process.argv[1]?.endsWith('settings-docs.js')) main();
