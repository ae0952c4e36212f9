/**
 * Frames a client sends while its token is still being checked: held (a few) and handled in order
 * right after the welcome; a flood of them closes the connection. The token check is held back on purpose,
 * so the frames really arrive before it ends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway } from '../../src/gateway/main.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import { MAX_FRAMES_BEFORE_WELCOME } from '../../src/gateway/uws-server.js';
import { startRoomService, type RunningRoomService } from '../../src/room-service/main.js';
import { createTokenVerifier, signToken, type TokenVerifier } from '../../src/shared/auth.js';
import { loadConfig } from '../../src/shared/config.js';
import { connectInfrastructure, type Infrastructure } from '../../src/shared/infrastructure.js';
import { silentLogger } from '../../src/shared/log.js';
import { MetricsRegistry } from '../../src/shared/metrics.js';
import { TEST_SECRET } from '../helpers/cluster.js';
import { WsTestClient } from '../helpers/ws-client.js';

let infra: Infrastructure;
let roomService: RunningRoomService;
let gateway: Gateway;
/** Token checks wait for this; each test opens and releases it. */
let release: () => void = () => undefined;
let checked: Promise<void> = Promise.resolve();

function holdTokenChecks(): void {
  checked = new Promise((resolve) => { release = resolve; });
}

beforeAll(async () => {
  const config = loadConfig('all-in-one', {
    ROOMCAST_JWT_SECRET: TEST_SECRET, ROOMCAST_API_KEYS: 'key', ROOMCAST_WS_HOST: '127.0.0.1', ROOMCAST_API_HOST: '127.0.0.1',
    ROOMCAST_WS_PORT: '0', ROOMCAST_GATEWAY_HTTP_PORT: '0', ROOMCAST_API_PORT: '0', ROOMCAST_LOG_LEVEL: 'silent',
  });
  infra = await connectInfrastructure(config, 'early-frames', silentLogger);
  const verify = await createTokenVerifier({ secret: TEST_SECRET });
  const heldVerify: TokenVerifier = async (token) => { await checked; return verify(token); };
  roomService = await startRoomService(config, infra, verify, new MetricsRegistry(), silentLogger);
  await roomService.service.createRoom('early', {});
  gateway = await startGateway(config, infra, heldVerify, new MetricsRegistry(), silentLogger);
});

afterAll(async () => {
  release();
  await gateway?.stop();
  await roomService?.stop();
  await infra?.close();
});

const url = () => `ws://127.0.0.1:${gateway.wsPort}/ws`;
const token = (uid: string) => signToken({ uid, role: 'viewer', ttlSeconds: 60 }, { secret: TEST_SECRET });

describe('frames before the welcome', () => {
  it('are held while the token is checked and handled in order after the welcome', async () => {
    holdTokenChecks();
    const client = await WsTestClient.connect(url(), { token: await token('eager') });
    client.send({ t: 'ping', ts: 1 });
    client.send({ t: 'join', room: 'early' });
    client.send({ t: 'ping', ts: 2 });
    // Nothing is answered before the token is checked.
    client.send({ t: 'ping', ts: 3 });
    expect(client.frames).toEqual([]);
    release();
    await client.next((f) => f.t === 'pong' && f.ts === 3);
    await client.next((f) => f.t === 'joined' && f.room === 'early');
    expect(client.frames[0]!.t).toBe('welcome');
    // Every held frame was handled, in the order sent (a join's answer waits for the room service).
    expect(client.frames.filter((f) => f.t === 'pong').map((f) => f.ts)).toEqual([1, 2, 3]);
    client.close();
  });

  it(`close the connection with 4000 when more than ${MAX_FRAMES_BEFORE_WELCOME} arrive`, async () => {
    holdTokenChecks();
    const client = await WsTestClient.connect(url(), { token: await token('impatient') });
    for (let i = 0; i <= MAX_FRAMES_BEFORE_WELCOME; i++) client.send({ t: 'ping', ts: i });
    expect(await client.closed()).toBe(4000);
    release();
    expect(client.frames.filter((f) => f.t === 'pong')).toEqual([]);
  });
});
