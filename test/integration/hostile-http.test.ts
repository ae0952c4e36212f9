/**
 * Hostile HTTP requests against a real Roomcast process. The all-in-one runs gateway and room service
 * in one process, so a request that crashed the HTTP API would take every WebSocket down with it.
 * Requests go out as raw bytes over TCP (fetch would normalise their targets); each gets its exact
 * status, and its error code where the API answers, and after each one the process is still up.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../src/shared/auth.js';
import { startNats, type NatsServerHandle } from '../helpers/nats-server.js';
import { startRedis, type RedisServerHandle } from '../helpers/redis-server.js';
import { startRoomcastProcess, type RoomcastProcess } from '../helpers/roomcast-process.js';
import { WsTestClient } from '../helpers/ws-client.js';

const SECRET = 'hostile-http-secret-that-is-long-enough';
const API_KEY = 'hostile-http-api-key';
/** Short, so that the trickling request below is cut off soon. */
const REQUEST_TIMEOUT_MS = 1000;
/** A safety net for a server that never answers (the test fails then); no assertion depends on it. */
const NO_ANSWER_MS = 10_000;
const MAX_BODY_BYTES = 64 * 1024;

let roomcast: RoomcastProcess;
let apiPort: number;
let wsUrl: string;
let metricsUrl: string;

beforeAll(async () => {
  roomcast = await startRoomcastProcess('all-in-one', {
    ROOMCAST_JWT_SECRET: SECRET, ROOMCAST_API_KEYS: API_KEY, ROOMCAST_API_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
  });
  apiPort = roomcast.ports.apiPort!;
  wsUrl = `ws://127.0.0.1:${roomcast.ports.wsPort}/ws`;
  metricsUrl = `http://127.0.0.1:${roomcast.ports.gatewayHttpPort}/metrics`;
});

afterAll(async () => {
  await roomcast?.stop();
});

interface RawResponse {
  /** null when the server closed the connection without answering. */
  status: number | null;
  headers: string;
  body: string;
}

/**
 * Writes `request` as is and reads until the server closes the connection (every request here says
 * `Connection: close`, and the server closes after an error of its own). `trickle` writes one more
 * byte of body every `everyMs` until then, as a slow client would.
 */
function rawRequest(port: number, request: string | Buffer, trickle?: { everyMs: number }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let dripping: NodeJS.Timeout | undefined;
    socket.setTimeout(NO_ANSWER_MS, () => socket.destroy(new Error(`no answer and no close within ${NO_ANSWER_MS} ms`)));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // The server may close while we still write (an oversized body): what it answered is what counts.
      if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') reject(error);
    });
    socket.on('close', () => {
      clearInterval(dripping);
      resolve(parseResponse(Buffer.concat(chunks).toString('latin1')));
    });
    socket.write(request);
    if (trickle) {
      dripping = setInterval(() => {
        if (socket.writable) socket.write('1');
      }, trickle.everyMs);
    }
  });
}

function parseResponse(text: string): RawResponse {
  if (text === '') return { status: null, headers: '', body: '' };
  const headEnd = text.indexOf('\r\n\r\n');
  const head = headEnd < 0 ? text : text.slice(0, headEnd);
  const status = /^HTTP\/1\.1 (\d{3}) /.exec(head);
  if (!status) throw new Error(`not an HTTP response: ${JSON.stringify(text.slice(0, 200))}`);
  let body = headEnd < 0 ? '' : text.slice(headEnd + 4);
  if (/^transfer-encoding:\s*chunked/im.test(head)) body = dechunk(body);
  return { status: Number(status[1]), headers: head, body: Buffer.from(body, 'latin1').toString('utf8') };
}

function dechunk(chunked: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const lineEnd = chunked.indexOf('\r\n', at);
    if (lineEnd < 0) return out;
    const size = parseInt(chunked.slice(at, lineEnd), 16);
    if (!(size > 0)) return out;
    out += chunked.slice(lineEnd + 2, lineEnd + 2 + size);
    at = lineEnd + 2 + size + 2;
  }
}

/** An HTTP/1.1 request with `Connection: close`; `auth` defaults to the API key, null sends none. */
function request(method: string, target: string, options: { auth?: string | null; headers?: string[]; body?: string | Buffer; contentType?: string | null } = {}): Buffer {
  const { auth = `Bearer ${API_KEY}`, headers = [], body, contentType = 'application/json' } = options;
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...headers];
  if (auth !== null) lines.push(`Authorization: ${auth}`);
  if (body !== undefined) {
    if (contentType !== null) lines.push(`Content-Type: ${contentType}`);
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  }
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), Buffer.from(body ?? '')]);
}

/** The process is running and its HTTP API answers. */
async function expectStillServing(): Promise<void> {
  expect(roomcast.running(), `the process exited:\n${roomcast.output()}`).toBe(true);
  const health = await rawRequest(apiPort, request('GET', '/healthz', { auth: null }));
  expect(health.status).toBe(200);
}

interface HttpCase {
  name: string;
  request: Buffer;
  status: number;
  /** The JSON error code; absent where Node answers before the API sees the request. */
  code?: string;
}

const CASES: HttpCase[] = [
  // Request targets that are not a plain path: the API once threw outside its handler's try on these.
  { name: 'GET //', request: request('GET', '//'), status: 400, code: 'bad_request' },
  { name: 'GET ///', request: request('GET', '///'), status: 400, code: 'bad_request' },
  { name: 'GET //[', request: request('GET', '//['), status: 400, code: 'bad_request' },
  { name: 'GET //@', request: request('GET', '//@'), status: 400, code: 'bad_request' },
  { name: 'GET //a:99999', request: request('GET', '//a:99999'), status: 400, code: 'bad_request' },
  { name: 'GET //v1/rooms/lobby', request: request('GET', '//v1/rooms/lobby'), status: 400, code: 'bad_request' },
  { name: 'an absolute-form target', request: request('GET', 'http://x/v1/rooms/lobby'), status: 400, code: 'bad_request' },
  { name: 'GET *', request: request('GET', '*'), status: 400, code: 'bad_request' },
  // Percent-escapes.
  { name: 'a cut-off UTF-8 escape in the room', request: request('GET', '/v1/rooms/%E0%A4%A'), status: 400, code: 'bad_request' },
  { name: 'a lone % in the room', request: request('GET', '/v1/rooms/lobby%'), status: 400, code: 'bad_request' },
  { name: 'a non-hex escape in a uid', request: request('PUT', '/v1/rooms/lobby/mutes/%ZZ'), status: 400, code: 'bad_request' },
  { name: 'an escape that is not UTF-8 in a uid', request: request('DELETE', '/v1/rooms/lobby/bans/%C3%28'), status: 400, code: 'bad_request' },
  { name: 'a bad escape in a group id', request: request('GET', '/v1/groups/%E0%A4%A'), status: 400, code: 'bad_request' },
  { name: 'a NUL escape in a room id', request: request('GET', '/v1/rooms/lob%00by'), status: 400, code: 'bad_room' },
  { name: 'an escaped slash in a room id', request: request('GET', '/v1/rooms/lobby%2Fmessages'), status: 400, code: 'bad_room' },
  { name: 'a NUL escape in a uid', request: request('PUT', '/v1/rooms/lobby/bans/a%00b'), status: 400, code: 'bad_request' },
  // Sizes.
  { name: 'a 20 KiB header', request: request('GET', '/v1/rooms/lobby', { headers: [`X-Padding: ${'a'.repeat(20 * 1024)}`] }), status: 431 },
  {
    name: 'a body over 64 KiB',
    request: request('POST', '/v1/rooms/lobby/messages', { body: JSON.stringify({ kind: 'system', text: 'x'.repeat(MAX_BODY_BYTES) }) }),
    status: 413, code: 'frame_too_large',
  },
  // Methods and bodies.
  { name: 'PATCH on a room', request: request('PATCH', '/v1/rooms/lobby', { body: '{}' }), status: 405, code: 'method_not_allowed' },
  { name: 'POST on a room', request: request('POST', '/v1/rooms/lobby', { body: '{}' }), status: 405, code: 'method_not_allowed' },
  { name: 'GET on slow mode', request: request('GET', '/v1/rooms/lobby/slow-mode'), status: 405, code: 'method_not_allowed' },
  { name: 'DELETE on the dispatch endpoint', request: request('DELETE', '/v1/gateway'), status: 405, code: 'method_not_allowed' },
  { name: 'GET on private messages', request: request('GET', '/v1/private-messages'), status: 405, code: 'method_not_allowed' },
  { name: 'a text/plain body', request: request('PUT', '/v1/rooms/typed', { body: '{}', contentType: 'text/plain' }), status: 415, code: 'unsupported_media_type' },
  { name: 'a form body', request: request('PUT', '/v1/rooms/typed', { body: 'slowModeMs=1', contentType: 'application/x-www-form-urlencoded' }), status: 415, code: 'unsupported_media_type' },
  { name: 'a body without a content type', request: request('PUT', '/v1/rooms/typed', { body: '{}', contentType: null }), status: 415, code: 'unsupported_media_type' },
  { name: 'invalid JSON', request: request('POST', '/v1/rooms/lobby/messages', { body: '{"kind":' }), status: 400, code: 'bad_request' },
  { name: 'a JSON array body', request: request('POST', '/v1/rooms/lobby/messages', { body: '[{"kind":"gift"}]' }), status: 400, code: 'bad_request' },
  { name: 'a JSON null body', request: request('PUT', '/v1/rooms/lobby/slow-mode', { body: 'null' }), status: 400, code: 'bad_request' },
  { name: 'a body that is not UTF-8', request: request('POST', '/v1/private-messages', { body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) }), status: 400, code: 'bad_request' },
  { name: 'half a surrogate pair in a JSON string', request: request('POST', '/v1/rooms/lobby/messages', { body: '{"kind":"system","text":"\\ud800"}' }), status: 400, code: 'bad_request' },
  { name: 'a deeply nested JSON body', request: request('POST', '/v1/rooms/lobby/messages', { body: `${'['.repeat(30_000)}${']'.repeat(30_000)}` }), status: 400, code: 'bad_request' },
  // Framing Node refuses itself, before the API sees a request.
  { name: 'a garbage request line', request: Buffer.from('HELLO\r\n\r\n'), status: 400 },
  { name: 'binary garbage', request: Buffer.from([0x00, 0xff, 0x16, 0x03, 0x01, 0x0d, 0x0a, 0x0d, 0x0a]), status: 400 },
  { name: 'a space in the target', request: request('GET', '/v1/rooms/lob by'), status: 400 },
  { name: 'a target without a leading slash', request: request('GET', 'v1/rooms/lobby'), status: 400 },
  {
    name: 'Content-Length and Transfer-Encoding together',
    request: request('PUT', '/v1/rooms/smuggled', { body: '{}', headers: ['Transfer-Encoding: chunked'] }),
    status: 400,
  },
  // Credentials.
  { name: 'no Authorization', request: request('GET', '/v1/rooms/lobby', { auth: null }), status: 401, code: 'unauthorized' },
  { name: 'Basic credentials', request: request('GET', '/v1/rooms/lobby', { auth: 'Basic dXNlcjpwYXNz' }), status: 401, code: 'unauthorized' },
  { name: 'an empty Bearer', request: request('GET', '/v1/rooms/lobby', { auth: 'Bearer' }), status: 401, code: 'unauthorized' },
  { name: 'a Bearer that is not a token', request: request('GET', '/v1/rooms/lobby', { auth: 'Bearer not.a.token' }), status: 401, code: 'unauthorized' },
  { name: 'a Bearer of binary junk', request: request('GET', '/v1/rooms/lobby', { auth: `Bearer ${'\u00ff\u00fe'.repeat(200)}` }), status: 401, code: 'unauthorized' },
];

describe('hostile HTTP requests to an all-in-one process', () => {
  it.each(CASES)('$name → $status $code', async (testCase) => {
    const response = await rawRequest(apiPort, testCase.request);
    expect(response.status, response.headers).toBe(testCase.status);
    if (testCase.code) expect(JSON.parse(response.body)).toMatchObject({ error: { code: testCase.code, message: expect.any(String) } });
    await expectStillServing();
  });

  it('a body that trickles in slower than the request timeout is cut off', async () => {
    const slow = request('PUT', '/v1/rooms/trickle', { headers: ['Content-Type: application/json', 'Content-Length: 100000'] });
    const response = await rawRequest(apiPort, Buffer.concat([slow, Buffer.from('{"slowModeMs":')]), { everyMs: REQUEST_TIMEOUT_MS / 4 });
    // Node answers 408 when it can, or just closes; either way the connection ends.
    expect([408, null]).toContain(response.status);
    await expectStillServing();
  });

  it('headers that trickle in slower than the request timeout are cut off', async () => {
    const response = await rawRequest(apiPort, 'GET /v1/rooms/lobby HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ', { everyMs: REQUEST_TIMEOUT_MS / 4 });
    expect([408, null]).toContain(response.status);
    await expectStillServing();
  });

  it('after all of it, the gateway in the same process still welcomes clients and no rejection escaped', async () => {
    const client = await WsTestClient.connect(wsUrl, { token: await signToken({ uid: 'after', role: 'viewer', ttlSeconds: 600 }, { secret: SECRET }) });
    expect(await client.next((f) => f.t === 'welcome')).toMatchObject({ uid: 'after' });
    client.close();
    const metrics = await (await fetch(metricsUrl)).text();
    expect(metrics).toMatch(/^roomcast_unhandled_rejections_total 0$/m);
    expect(roomcast.running()).toBe(true);
  });
});

describe('the room service process serves metrics only on its ops port', () => {
  let nats: NatsServerHandle;
  let redis: RedisServerHandle;
  let roomService: RoomcastProcess;

  beforeAll(async () => {
    nats = await startNats();
    redis = await startRedis();
    roomService = await startRoomcastProcess('room-service', {
      ROOMCAST_NATS_URL: nats.url, ROOMCAST_REDIS_URL: redis.url, ROOMCAST_JWT_SECRET: SECRET, ROOMCAST_API_KEYS: API_KEY,
    });
  });

  afterAll(async () => {
    await roomService?.stop();
    await redis?.stop();
    await nats?.stop();
  });

  it('GET /metrics on the public API port is 404 not_found, with or without a credential', async () => {
    for (const auth of [null, `Bearer ${API_KEY}`]) {
      const response = await rawRequest(roomService.ports.apiPort!, request('GET', '/metrics', { auth }));
      expect(response.status).toBe(404);
      expect(JSON.parse(response.body)).toMatchObject({ error: { code: 'not_found' } });
      expect(response.body).not.toContain('roomcast_');
    }
  });

  it('GET /metrics on ROOMCAST_API_METRICS_PORT serves the metrics', async () => {
    const response = await rawRequest(roomService.ports.apiMetricsPort!, request('GET', '/metrics', { auth: null }));
    expect(response.status).toBe(200);
    expect(response.body).toMatch(/^roomcast_unhandled_rejections_total 0$/m);
    expect(response.body).toContain('roomcast_http_requests_total');
    expect(roomService.running()).toBe(true);
  });
});
