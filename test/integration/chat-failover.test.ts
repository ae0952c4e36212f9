/**
 * Private chat survives the death of a room-service replica: two replicas run as their own processes
 * (`roomcast room-service`) behind two in-process gateways on real NATS and Redis; one is killed
 * with SIGKILL while 1,000 messages are being sent by clients that retry on timeout with the same
 * client message id. Every acknowledged message is delivered to its online recipient, each message is
 * stored once, and recipients show each once.
 */
import { setTimeout as delay } from 'node:timers/promises';
import WebSocket from 'ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RoomcastClient, type WebSocketConstructor } from '../../src/client/roomcast-client.js';
import { createTokenVerifier, signToken } from '../../src/shared/auth.js';
import { loadConfig } from '../../src/shared/config.js';
import { connectInfrastructure, type Infrastructure } from '../../src/shared/infrastructure.js';
import { silentLogger } from '../../src/shared/log.js';
import { MetricsRegistry } from '../../src/shared/metrics.js';
import type { PrivateMessage } from '../../src/shared/protocol/chat-frames.js';
import { startGateway } from '../../src/gateway/main.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import { startNats, type NatsServerHandle } from '../helpers/nats-server.js';
import { startRedis, type RedisServerHandle } from '../helpers/redis-server.js';
import { startRoomcastProcess, type RoomcastProcess } from '../helpers/roomcast-process.js';
import { WsTestClient, type AnyFrame } from '../helpers/ws-client.js';

const SECRET = 'failover-secret-that-is-long-enough-for-hs256';
/** Raw WebSocket senders that retry by hand, and one SDK sender that retries by itself. */
const SENDERS = 9;
const PER_SENDER = 100;
const RECIPIENTS = 4;
const IN_FLIGHT = 10;
const KILL_AFTER_ACKS = 300;
/** The replica is stopped this long before it is killed: requests pile up on it, unanswered, so some are surely lost. */
const FROZEN_MS = 300;

let nats: NatsServerHandle;
let redis: RedisServerHandle;
const replicas: RoomcastProcess[] = [];

/**
 * A crash with requests in flight: a replica answers within a millisecond, so a plain SIGKILL may
 * land when it holds none. Stopped first, it keeps receiving its share of requests from the queue
 * group without answering them, and the kill loses those.
 */
async function freezeThenKill(replica: RoomcastProcess): Promise<void> {
  process.kill(replica.pid, 'SIGSTOP');
  await delay(FROZEN_MS);
  await replica.kill();
}
const gateways: Gateway[] = [];
const infras: Infrastructure[] = [];
const clients: WsTestClient[] = [];
const sdkClients: RoomcastClient[] = [];

/** Each process logs in to NATS and Redis as its role's user. */
const env = (role: 'gateway' | 'room-service'): Record<string, string> => ({
  ROOMCAST_NATS_URL: nats.plainUrl, ROOMCAST_NATS_USER: role, ROOMCAST_NATS_PASSWORD: nats.credentials(role).password,
  ROOMCAST_REDIS_URL: redis.urlFor(role), ROOMCAST_JWT_SECRET: SECRET, ROOMCAST_API_KEYS: 'k',
  ROOMCAST_LOG_LEVEL: 'silent', ROOMCAST_CHAT_RATE_PER_SEC: '100000', ROOMCAST_CHAT_BURST: '100000',
  ROOMCAST_FRAME_RATE_PER_SEC: '100000', ROOMCAST_FRAME_BURST: '100000', ROOMCAST_REQUEST_TIMEOUT_MS: '1000', ROOMCAST_API_METRICS_PORT: '0',
});

beforeAll(async () => {
  nats = await startNats();
  redis = await startRedis({ acl: true });
  for (let i = 0; i < 2; i++) replicas.push(await startRoomcastProcess('room-service', env('room-service')));
  const verifyToken = await createTokenVerifier({ secret: SECRET });
  for (let i = 0; i < 2; i++) {
    const config = loadConfig('gateway', {
      ...env('gateway'), ROOMCAST_GATEWAY_ID: `gw${i}`, ROOMCAST_WS_HOST: '127.0.0.1', ROOMCAST_WS_PORT: '0', ROOMCAST_GATEWAY_HTTP_PORT: '0',
    });
    const infra = await connectInfrastructure(config, `gateway-${i}`, silentLogger);
    infras.push(infra);
    gateways.push(await startGateway(config, infra, verifyToken, new MetricsRegistry(), silentLogger));
  }
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  for (const c of sdkClients) c.close();
  for (const gateway of gateways) await gateway.stop();
  for (const infra of infras) await infra.close();
  for (const replica of replicas) await replica.stop();
  await redis?.stop();
  await nats?.stop();
});

async function connect(uid: string, gateway: number): Promise<WsTestClient> {
  const token = await signToken({ uid, role: 'viewer', ttlSeconds: 600 }, { secret: SECRET });
  const client = await WsTestClient.connect(`ws://127.0.0.1:${gateways[gateway]!.wsPort}/ws`, { token });
  clients.push(client);
  await client.next((f) => f.t === 'inbox' && f.lastSeq !== undefined);
  return client;
}

/** Sends one message until it is acknowledged, retrying with the same id on any failure. */
async function sendUntilAcked(client: WsTestClient, to: string, id: string, retries: { count: number }): Promise<AnyFrame> {
  for (;;) {
    const from = client.frames.length;
    client.send({ t: 'pm', to, id, text: `text of ${id}` });
    const answer = await client.next((f) => (f.t === 'sent' || f.t === 'error') && f.id === id, 5_000, from).catch(() => null);
    if (answer?.t === 'sent') return answer;
    retries.count++;
  }
}

it('every acknowledged message is delivered once a replica is killed mid-stream', async () => {
  const recipients = await Promise.all(Array.from({ length: RECIPIENTS }, (_, i) => connect(`reader-${i}`, i % 2)));
  const senders = await Promise.all(Array.from({ length: SENDERS }, (_, i) => connect(`writer-${i}`, (i + 1) % 2)));
  const sdk = new RoomcastClient({
    url: `ws://127.0.0.1:${gateways[0]!.wsPort}/ws`, token: await signToken({ uid: 'writer-sdk', role: 'viewer', ttlSeconds: 600 }, { secret: SECRET }),
    WebSocket: WebSocket as unknown as WebSocketConstructor, requestTimeoutMs: 3000,
  });
  sdkClients.push(sdk);
  await sdk.connect();
  const acked: AnyFrame[] = [];
  const retries = { count: 0 };
  let killed: Promise<void> | null = null;
  const sdkLane = (async () => {
    for (let i = 0; i < PER_SENDER; i++) {
      acked.push(await sdk.chat.sendPrivate(`reader-${i % RECIPIENTS}`, `sdk ${i}`, { id: `sdk-${i}` }) as unknown as AnyFrame);
      if (acked.length === KILL_AFTER_ACKS) killed = freezeThenKill(replicas[1]!);
    }
  })();

  await Promise.all(senders.map(async (sender, s) => {
    const ids = Array.from({ length: PER_SENDER }, (_, i) => i);
    const lane = async () => {
      for (let i = ids.shift(); i !== undefined; i = ids.shift()) {
        acked.push(await sendUntilAcked(sender, `reader-${i % RECIPIENTS}`, `w${s}-${i}`, retries));
        if (acked.length === KILL_AFTER_ACKS) killed = freezeThenKill(replicas[1]!);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  }));
  await sdkLane;
  await killed;
  expect(killed).not.toBeNull();
  // Requests in flight on the killed replica were lost and retried: the test did exercise the failure.
  expect(retries.count).toBeGreaterThan(0);
  expect(acked).toHaveLength((SENDERS + 1) * PER_SENDER);

  for (let r = 0; r < RECIPIENTS; r++) {
    const reader = recipients[r]!;
    const expected = acked.filter((a) => a.to === `reader-${r}`).map((a) => a.mid as string);
    // Every acknowledged message was pushed to the online recipient (routing precedes the ack).
    const pushed = () => new Set(reader.frames.filter((f) => f.t === 'inbox').flatMap((f) => (f.msgs as PrivateMessage[]).map((m) => m.mid)));
    await reader.until(() => (expected.every((mid) => pushed().has(mid)) ? true : undefined), 20_000, `every message for reader-${r}`)
      .catch((error: Error) => {
        // Name what never came, with the answers its sender got, so a failure says which send it was.
        const missing = expected.filter((mid) => !pushed().has(mid));
        throw new Error(`${error.message.slice(0, 200)}…; never pushed: ${JSON.stringify(acked.filter((a) => missing.includes(a.mid as string)))}`);
      });

    // Stored once each: the inbox holds exactly the acknowledged messages, gap-free.
    const from = reader.frames.length;
    reader.send({ t: 'sync', after: 0, limit: 1000 });
    const all: PrivateMessage[] = [];
    let page = await reader.next((f) => f.t === 'synced', 10_000, from);
    all.push(...(page.msgs as PrivateMessage[]));
    while (page.more) {
      const at = reader.frames.length;
      reader.send({ t: 'sync', after: all[all.length - 1]!.seq });
      page = await reader.next((f) => f.t === 'synced', 10_000, at);
      all.push(...(page.msgs as PrivateMessage[]));
    }
    expect(all.map((m) => m.seq)).toEqual(Array.from({ length: expected.length }, (_, i) => i + 1));
    expect(new Set(all.map((m) => m.mid))).toEqual(new Set(expected));

    // Shown once: duplicates of a push (a retried send is routed again) are dropped by mid.
    const shown = new Set<string>();
    let duplicatesDropped = 0;
    for (const m of reader.frames.filter((f) => f.t === 'inbox').flatMap((f) => f.msgs as PrivateMessage[])) {
      if (shown.has(m.mid)) duplicatesDropped++;
      else shown.add(m.mid);
    }
    expect(shown.size).toBe(expected.length);
    expect(duplicatesDropped).toBeLessThanOrEqual(retries.count);
  }
}, 120_000);
