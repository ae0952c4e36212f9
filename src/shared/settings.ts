/**
 * The one settings loader of every roomcast command. A config module declares each setting once,
 * as a row — `setting(key, env, default, parser, help)` — and this module does the rest from the
 * rows: flags parsed by `node:util` `parseArgs` (`--name value`, `--name=value`; flags win over
 * the environment), every problem collected instead of thrown at the first, the result deep-frozen,
 * the `--help` text and the documentation tables (settings-docs.ts).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export type Parsed<T> = { value: T } | { problem: string };
export type Parser<T> = (raw: string) => Parsed<T>;

/** What the documentation shows beyond the row itself; rows without it need nothing. */
export interface SettingExtras {
  /** The default as the docs should put it, when the value alone says too little (a null that means "derived", 7 days in ms). */
  shownDefault?: string;
  /** A flag that takes no value and sets the setting to true (`--dry-run`). */
  switchFlag?: string;
}

export interface Setting<C, K extends keyof C = keyof C> extends SettingExtras {
  key: K;
  env: string;
  /** Derived from env: ROOMCAST_WS_PORT → --ws-port. */
  flag: string;
  default: C[K];
  parse: Parser<C[K]>;
  help: string;
}

/** The row builder for a config type: `const setting = settingRow<Config>()`. */
export function settingRow<C>() {
  return <K extends keyof C>(key: K, env: string, def: C[K], parse: Parser<C[K]>, help: string, extras: SettingExtras = {}): Setting<C, K> => {
    const flag = `--${env.replace(/^ROOMCAST_/, '').toLowerCase().replaceAll('_', '-')}`;
    return { key, env, flag, default: def, parse, help, ...extras };
  };
}

export type DeepReadonly<T> = T extends (...args: never[]) => unknown ? T
  : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

/** Freezes a value and everything it holds, so no part of a loaded configuration can change later. */
export function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value as DeepReadonly<T>;
}

export interface FlagParse {
  /** Flag (with its dashes) → the last value given. */
  flags: Map<string, string>;
  problems: string[];
}

type Token = NonNullable<ReturnType<typeof parseArgs>['tokens']>[number];

/**
 * Reads `--name value` and `--name=value` for the declared flags, and `switches` that take no value
 * (given as "true"). Unknown flags, stray arguments and flags without a value are problems, all of
 * them, not only the first.
 */
export function parseFlags(argv: readonly string[], known: readonly string[], switches: readonly string[] = []): FlagParse {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const flag of known) options[flag.replace(/^--/, '')] = { type: 'string' };
  for (const flag of switches) options[flag.replace(/^--/, '')] = { type: 'boolean' };
  const flags = new Map<string, string>();
  const problems: string[] = [];
  const tokens = tokensOf([...argv], options);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.kind === 'positional') { problems.push(`unexpected argument '${token.value}'`); continue; }
    if (token.kind === 'option-terminator') { problems.push(`unexpected argument '--'`); continue; }
    const declared = options[token.name];
    if (!declared || !token.rawName.startsWith('--')) {
      problems.push(`unknown flag ${token.rawName}`);
      // `--typo 5`: the 5 was meant as its value, not as an argument of its own.
      if (token.value === undefined && tokens[i + 1]?.kind === 'positional') i++;
      continue;
    }
    if (declared.type === 'boolean') {
      if (token.inlineValue) problems.push(`${token.rawName} takes no value`);
      else flags.set(token.rawName, 'true');
      continue;
    }
    if (token.value === undefined) problems.push(`${token.rawName} needs a value`);
    else flags.set(token.rawName, token.value);
  }
  return { flags, problems };
}

/**
 * parseArgs tokens, except that a flag never takes the next flag as its value (`--a --b 1` is `--a`
 * without a value, then `--b 1`), as the old hand-written parser did and as a reader expects.
 */
function tokensOf(args: string[], options: NonNullable<ParseArgsConfig['options']>, offset = 0): Token[] {
  const { tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
  const shifted = tokens.map((t) => ({ ...t, index: t.index + offset }) as Token);
  const swallowing = shifted.find((t) => t.kind === 'option' && !t.inlineValue && t.value?.startsWith('--') && options[t.name]?.type === 'string');
  if (!swallowing || swallowing.kind !== 'option') return shifted;
  const at = swallowing.index - offset;
  return [
    ...shifted.filter((t) => t.index < swallowing.index),
    { kind: 'option', name: swallowing.name, rawName: swallowing.rawName, index: swallowing.index, value: undefined, inlineValue: undefined },
    ...tokensOf(args.slice(at + 1), options, swallowing.index + 1),
  ];
}

export interface LoadedSettings<C> {
  /** Every setting: parsed, or its default when absent or refused (so cross-checks see a whole object). */
  values: C;
  problems: string[];
  /** ROOMCAST_* variables that no row names. */
  unknownVariables: string[];
}

/** Reads every row from the flags (first) and the environment, collecting every problem. */
export function readSettings<C>(rows: readonly Setting<C>[], env: Readonly<Record<string, string | undefined>>, argv: readonly string[]): LoadedSettings<C> {
  const { flags, problems } = parseFlags(argv, rows.map((s) => s.flag), rows.flatMap((s) => (s.switchFlag ? [s.switchFlag] : [])));
  const values = {} as C;
  for (const s of rows) {
    const raw = flags.get(s.flag) ?? (s.switchFlag ? flags.get(s.switchFlag) : undefined) ?? env[s.env];
    values[s.key] = s.default;
    if (raw === undefined) continue;
    const parsed = s.parse(raw.trim());
    if ('problem' in parsed) problems.push(`${s.env} (${s.flag}) ${parsed.problem}; got '${raw.slice(0, 60)}'`);
    else values[s.key] = parsed.value;
  }
  const named = new Set(rows.map((s) => s.env));
  const unknownVariables = Object.keys(env).filter((name) => name.startsWith('ROOMCAST_') && !named.has(name));
  return { values, problems, unknownVariables };
}

/** The rows for `--help`: variable, flag and default, then the help text. */
export function usageOf<C>(rows: readonly Setting<C>[], widths: { env: number; flag: number }): string {
  const plain = (text: string) => text.replaceAll('`', '');
  return rows.map((s) => {
    const flags = s.switchFlag ? `${s.flag}, ${s.switchFlag}` : s.flag;
    const shown = s.shownDefault === undefined ? JSON.stringify(s.default) : plain(s.shownDefault);
    return `  ${s.env.padEnd(widths.env)} ${flags.padEnd(widths.flag)} ${shown}\n      ${plain(s.help)}`;
  }).join('\n');
}
