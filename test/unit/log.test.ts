import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, silentLogger } from '../../src/shared/log.js';

function capture(level: Parameters<typeof createLogger>[0]['level'] = 'debug') {
  const lines: string[] = [];
  const log = createLogger({ level, write: (line) => lines.push(line), bound: { service: 'roomcast-test' } });
  return { log, lines, records: () => lines.map((line) => JSON.parse(line) as Record<string, any>) };
}

afterEach(() => { vi.restoreAllMocks(); });

describe('logger', () => {
  it('writes one JSON object per line with msg, level as its label, an ISO time, the bound and given fields', () => {
    const { log, lines, records } = capture();
    log.info('drained', { remaining: 0 });
    log.child({ room: 'lobby' }).warn('slow', { conn: 7 });
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).not.toContain('\n');
    expect(lines[0]).toContain('"msg":"drained"');
    const [first, second] = records();
    expect(first).toMatchObject({ level: 'info', msg: 'drained', service: 'roomcast-test', remaining: 0 });
    expect(new Date(first!.time).toISOString()).toBe(first!.time);
    expect(second).toMatchObject({ level: 'warn', msg: 'slow', service: 'roomcast-test', room: 'lobby', conn: 7 });
    expect(first).not.toHaveProperty('pid');
  });

  it('keeps an error\'s whole stack and its cause, under any field name', () => {
    const { log, records } = capture();
    const cause = new Error('connection refused');
    log.error('stop failed', { error: new Error('boom', { cause }) });
    const { error } = records()[0]!;
    expect(error).toMatchObject({ type: 'Error', message: expect.stringContaining('boom') });
    expect(error.stack).toContain('log.test.ts');
    expect(error.stack.split('\n').length).toBeGreaterThan(3);
    expect(JSON.stringify(error)).toContain('connection refused');
  });

  it('cuts long strings and byte arrays short, and filters by level', () => {
    const { log, records } = capture('info');
    log.debug('hidden');
    log.info('payload', { text: 'x'.repeat(1000), frame: new Uint8Array(4096) });
    const all = records();
    expect(all).toHaveLength(1);
    expect(all[0]!.text.length).toBeLessThanOrEqual(201);
    expect(all[0]!.frame).toBe('<4096 bytes>');
  });

  it('writes to stdout by default, and the silent logger writes nothing', () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    createLogger({ level: 'info' }).info('to stdout');
    expect(write).toHaveBeenCalledTimes(1);
    expect(String(write.mock.calls[0]![0])).toMatch(/^\{.*"msg":"to stdout".*\}\n$/);
    write.mockClear();
    silentLogger.error('nothing', { error: new Error('x') });
    silentLogger.child({ a: 1 }).info('nothing');
    createLogger({ level: 'silent' }).error('nothing');
    expect(write).not.toHaveBeenCalled();
  });
});
