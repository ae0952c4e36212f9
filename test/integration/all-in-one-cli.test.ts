/**
 * `roomcast all-in-one` as a new user runs it (the built CLI, as `npm start` runs it): it prints where
 * to connect and a token, and a client can join the demo room, chat, and see a backend's gift.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RoomMessage } from '../../src/shared/protocol/frames.js';
import { WsTestClient } from '../helpers/ws-client.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
let child: ChildProcess;
let output = '';

function field(pattern: RegExp): string {
  const match = pattern.exec(output);
  if (!match) throw new Error(`not in the output: ${pattern}\n${output.slice(0, 2000)}`);
  return match[1]!;
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error('dist/src/cli.js is missing: run `npm run build` (npm test does)');
  // A new user's shell: no ROOMCAST_* settings but free ports, so a running service is never disturbed.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('ROOMCAST_')));
  Object.assign(env, { ROOMCAST_WS_PORT: '0', ROOMCAST_GATEWAY_HTTP_PORT: '0', ROOMCAST_API_PORT: '0', ROOMCAST_WS_HOST: '127.0.0.1', ROOMCAST_API_HOST: '127.0.0.1' });
  child = spawn(process.execPath, [CLI, 'all-in-one'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start-up guide in time:\n${output}`)), 20_000);
    const check = () => { if (output.includes('Publish a gift')) { clearTimeout(timer); resolve(); } };
    child.stdout!.on('data', check);
    child.once('exit', (code) => reject(new Error(`exited with ${code}:\n${output}`)));
  });
});

afterAll(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
});

it('prints a working guide: connect with the token, join the lobby, chat, receive a gift, stop cleanly', async () => {
  const wsUrl = field(/WebSocket:\s+(ws:\/\/\S+)/);
  const apiUrl = field(/HTTP API:\s+(http:\/\/\S+)/);
  const token = field(/A viewer token for 'alice' \(24 h\):\s+(\S+)/);
  const apiKey = field(/Dev API key \(made for this run\): (\S+)/);
  // The `listening` line names the ports it bound for the 0s it was given, as the guide does.
  const listening = output.split('\n').map((line) => (line.startsWith('{') ? JSON.parse(line) : null)).find((record) => record?.msg === 'listening');
  expect(listening).toMatchObject({ role: 'all-in-one', mode: 'embedded' });
  expect([`ws://127.0.0.1:${listening.wsPort}/ws`, `http://127.0.0.1:${listening.apiPort}/v1/rooms/lobby`]).toEqual([wsUrl, apiUrl]);
  expect((await fetch(`http://127.0.0.1:${listening.gatewayHttpPort}/readyz`)).status).toBe(200);

  const client = await WsTestClient.connect(wsUrl, { token });
  expect(await client.next((f) => f.t === 'welcome')).toMatchObject({ uid: 'alice', role: 'viewer' });
  client.send({ t: 'join', room: 'lobby' });
  await client.next((f) => f.t === 'joined' && f.room === 'lobby');
  client.send({ t: 'send', room: 'lobby', id: 'hello-1', text: 'hello, lobby' });
  expect(await client.next((f) => f.t === 'ack')).toMatchObject({ id: 'hello-1', seq: 1 });

  const response = await fetch(`${apiUrl}/messages`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ kind: 'gift', uid: 'bob', text: 'a rocket', data: { gift: 'rocket', count: 1 } }),
  });
  expect(response.status).toBe(201);
  await client.until(() => (client.messages('lobby').length >= 2 ? true : undefined), 10_000, 'chat and gift');
  expect(client.messages('lobby').map((m: RoomMessage) => [m.seq, m.kind, m.uid, m.prio])).toEqual([[1, 'chat', 'alice', 0], [2, 'gift', 'bob', 1]]);
  expect(client.messages('lobby')[1]!.data).toEqual({ gift: 'rocket', count: 1 });

  // The printed page URLs: the viewer page and the console, from the gateway, each with a working token.
  const viewerPage = new URL(field(/^Viewer page: (\S+)$/m));
  const consolePage = new URL(field(/^Streamer console: (\S+)$/m));
  expect(viewerPage.origin).toBe(new URL(wsUrl.replace(/^ws/, 'http')).origin);
  expect(viewerPage.searchParams.get('room')).toBe('lobby');
  expect(consolePage.pathname).toBe('/console');
  for (const page of [viewerPage, consolePage]) {
    const response = await fetch(page);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
  }
  const streamer = await WsTestClient.connect(wsUrl, { token: new URLSearchParams(consolePage.hash.slice(1)).get('token')! });
  expect(await streamer.next((f) => f.t === 'welcome')).toMatchObject({ uid: 'streamer', role: 'streamer' });
  expect(new URLSearchParams(viewerPage.hash.slice(1)).get('token')).toBe(token);
  // All-in-one offers the viewer page's dev sign-in.
  expect(await (await fetch(new URL('/dev/sign-in', viewerPage))).json()).toEqual({ enabled: true });

  child.kill('SIGTERM');
  const [code] = await new Promise<[number | null]>((resolve) => child.once('exit', (exitCode) => resolve([exitCode])));
  expect(code).toBe(0);
  expect(await client.closed()).toBe(1012);
});
