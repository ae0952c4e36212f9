import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_TABLE, RoomcastError, closeCodeOf, fail, httpStatusOf, isErrorCode, toRoomcastError, type ErrorCode } from '../../src/shared/errors.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const PROTOCOL = readFileSync(join(ROOT, 'docs/protocol.md'), 'utf8');

/** The rows of the first markdown table after `heading`, as cells. */
function tableAfter(heading: string): string[][] {
  const start = PROTOCOL.indexOf(heading);
  expect(start, `docs/protocol.md has '${heading}'`).toBeGreaterThan(-1);
  const rows: string[][] = [];
  let inTable = false;
  for (const line of PROTOCOL.slice(start).split('\n').slice(1)) {
    if (line.startsWith('|')) {
      inTable = true;
      const cells = line.slice(1, -1).split('|').map((cell) => cell.trim());
      if (!cells.every((cell) => /^-+$/.test(cell))) rows.push(cells);
    } else if (inTable) {
      break;
    }
  }
  return rows.slice(1);
}

const unquote = (cell: string) => cell.replace(/^`|`$/g, '');

describe('the error table', () => {
  const entries = Object.entries(ERROR_TABLE);

  it('has stable snake_case codes, each with a message and an HTTP status', () => {
    for (const [code, entry] of entries) {
      expect(code).toMatch(/^[a-z]+(_[a-z]+)*$/);
      expect(entry.message.length).toBeGreaterThan(0);
      expect(entry.http).toBeGreaterThanOrEqual(400);
      expect(entry.http).toBeLessThan(600);
    }
  });

  it('gives each close code to one error only, in the ranges a server may send', () => {
    const closeCodes = entries.map(([code]) => closeCodeOf(code as keyof typeof ERROR_TABLE)).filter((c): c is number => c !== undefined);
    expect(new Set(closeCodes).size).toBe(closeCodes.length);
    for (const code of closeCodes) expect(code === 1009 || code === 1011 || code === 1012 || (code >= 4000 && code <= 4999)).toBe(true);
  });

  it('maps codes to statuses and recognizes only its own codes', () => {
    expect(httpStatusOf('unauthorized')).toBe(401);
    expect(closeCodeOf('unauthorized')).toBe(4001);
    expect(closeCodeOf('rate_limited')).toBeUndefined();
    expect(isErrorCode('bad_frame')).toBe(true);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode(42)).toBe(false);
  });

  it('wraps unknown failures as internal, keeping the cause', () => {
    const cause = new TypeError('boom');
    const wrapped = toRoomcastError(cause);
    expect(wrapped.code).toBe('internal');
    expect(wrapped.cause).toBe(cause);
    const own = new RoomcastError('muted');
    expect(toRoomcastError(own)).toBe(own);
  });
});

describe('the error table and docs/protocol.md', () => {
  it('section 7 lists exactly the codes of the table, each with its HTTP status and close code', () => {
    const documented = tableAfter('## 7. Errors').map(([code, http, close]) => ({
      code: unquote(code!), http: Number(http), close: close === '' ? undefined : Number(close!.replace(/ .*/, '')),
    }));
    const implemented = Object.keys(ERROR_TABLE).map((code) => ({
      code, http: httpStatusOf(code as ErrorCode), close: closeCodeOf(code as ErrorCode),
    }));
    expect([...documented].sort((a, b) => a.code.localeCompare(b.code))).toEqual([...implemented].sort((a, b) => a.code.localeCompare(b.code)));
  });

  it('section 8 names every close code an error ends a connection with, and nothing else as an error', () => {
    const documented = new Map(tableAfter('## 8. Close codes').flatMap(([codes, meaning]) =>
      codes!.split('/').map((code) => [Number(code.trim()), /^`([a-z_]+)`/.exec(meaning!)?.[1]] as const)));
    for (const code of Object.keys(ERROR_TABLE) as ErrorCode[]) {
      const close = closeCodeOf(code);
      if (close !== undefined) expect(documented.get(close), `close ${close}`).toBe(code);
    }
    for (const [close, code] of documented) {
      if (code !== undefined) expect(closeCodeOf(code as ErrorCode), `${close} ${code}`).toBe(close);
    }
  });
});

describe('the error factories', () => {
  it('build every code of the table, each its own', () => {
    expect(Object.keys(fail).sort()).toEqual(Object.keys(ERROR_TABLE).sort());
    for (const [code, make] of Object.entries(fail)) {
      const error = (make as (...args: unknown[]) => RoomcastError)('x', ['GET']);
      expect(error).toBeInstanceOf(RoomcastError);
      expect(error.code).toBe(code);
      expect(error.message.length).toBeGreaterThan(0);
    }
  });

  it('are the only place that builds an error: no module constructs one itself', () => {
    const offenders: string[] = [];
    const visit = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) visit(path);
        else if (path.endsWith('.ts') && !path.endsWith('shared/errors.ts')) {
          const source = readFileSync(path, 'utf8');
          if (/new (RoomcastError|BadFrameError|UnauthorizedError)\(/.test(source)) offenders.push(path.slice(ROOT.length));
        }
      }
    };
    visit(join(ROOT, 'src'));
    expect(offenders).toEqual([]);
  });

  it('hold each message template', () => {
    expect(fail.unknown_room('lobby').message).toBe("room 'lobby' does not exist");
    expect(fail.method_not_allowed('PATCH', ['GET', 'PUT']).message).toBe('PATCH is not allowed here; use GET, PUT');
  });
});
