/**
 * The bench's limit peers (bench/peers/limit-peer.mjs) over a real WebSocket: `limit` takes joins and
 * publishes, leaving sends unanswered; `limit-sends` (BENCH_LIMIT_ACK_SENDS=1) answers each send at
 * once with an `ack` of Roomcast's layout. The efficiency report's second ratio rests on that.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { decodeMsgpack, encodeMsgpack } from '../../src/shared/codec/codec.js';

const started: ChildProcess[] = [];

afterAll(() => {
  for (const child of started) child.kill('SIGTERM');
});

async function startLimitPeer(ackSends: boolean): Promise<number> {
  const child = spawn(process.execPath, ['bench/peers/limit-peer.mjs'], {
    env: { ...process.env, BENCH_PEER_PORT: '0', ...(ackSends ? { BENCH_LIMIT_ACK_SENDS: '1' } : {}) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  started.push(child);
  for await (const line of createInterface({ input: child.stdout! })) {
    const match = /^listening (\d+)$/.exec(line.trim());
    if (match) return Number(match[1]);
  }
  throw new Error('the limit peer exited before listening');
}

/** A msgpack client that hands over its frames in order. */
async function connect(port: number): Promise<{ ws: WebSocket; next: () => Promise<Record<string, unknown>> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, 'roomcast.v1.msgpack');
  const frames: Record<string, unknown>[] = [];
  const waiting: ((frame: Record<string, unknown>) => void)[] = [];
  ws.on('message', (data: Buffer) => {
    const frame = decodeMsgpack(data) as Record<string, unknown>;
    const waiter = waiting.shift();
    if (waiter) waiter(frame); else frames.push(frame);
  });
  await once(ws, 'open');
  const next = () => new Promise<Record<string, unknown>>((resolve) => {
    const frame = frames.shift();
    if (frame) resolve(frame); else waiting.push(resolve);
  });
  return { ws, next };
}

describe('limit peers (bench)', () => {
  it('limit-sends answers each send at once with an ack of Roomcast\'s layout', async () => {
    const { ws, next } = await connect(await startLimitPeer(true));
    expect(await next()).toMatchObject({ t: 'welcome' });
    ws.send(encodeMsgpack({ t: 'join', room: 'hot' }));
    expect(await next()).toMatchObject({ t: 'joined', room: 'hot', seq: 0 });
    ws.send(encodeMsgpack({ t: 'send', room: 'hot', id: 's-1', text: 'hello' }));
    ws.send(encodeMsgpack({ t: 'send', room: 'hot', id: 's-2', text: 'again' }));
    expect(await next()).toEqual({ t: 'ack', id: 's-1', room: 'hot', seq: 0 });
    expect(await next()).toEqual({ t: 'ack', id: 's-2', room: 'hot', seq: 0 });
    ws.close();
  });

  it('limit leaves sends unanswered: the next answer is the pong to a later ping', async () => {
    const { ws, next } = await connect(await startLimitPeer(false));
    expect(await next()).toMatchObject({ t: 'welcome' });
    ws.send(encodeMsgpack({ t: 'join', room: 'hot' }));
    expect(await next()).toMatchObject({ t: 'joined', room: 'hot' });
    ws.send(encodeMsgpack({ t: 'send', room: 'hot', id: 's-1', text: 'hello' }));
    ws.send(encodeMsgpack({ t: 'ping', ts: 7 }));
    expect(await next()).toEqual({ t: 'pong', ts: 7 });
    ws.close();
  });
});
