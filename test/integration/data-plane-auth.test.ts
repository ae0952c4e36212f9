/**
 * Least privilege on the data plane, with the deployment's own NATS permissions (auth.conf) and Redis
 * ACL users (users.acl): only a gateway may ask the room service anything (so the `caller` it trusts
 * was set by a gateway), only the room service may write into rooms and gateways' deliveries, a
 * wrong password stops a process at start-up with a clear error, and the gateway and room service
 * do their work as their own users.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsBus } from '../../src/shared/bus/nats-bus.js';
import { silentLogger } from '../../src/shared/log.js';
import { subjects } from '../../src/shared/protocol/bus-messages.js';
import type { ChatBatchReply, ChatBatchRequest } from '../../src/shared/protocol/chat-bus-messages.js';
import { call } from '../../src/shared/bus/rpc.js';
import { connectRedis, type RedisConnection } from '../../src/shared/store/redis-client.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { Latch } from '../helpers/latch.js';
import type { NatsUser } from '../helpers/nats-server.js';
import { TEST_REDIS_PASSWORDS } from '../helpers/redis-server.js';
import { WsTestClient } from '../helpers/ws-client.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const ROOM = 'lobby';
const UNPRIVILEGED: NatsUser[] = ['tools', 'push-worker'];
const REQUEST_TIMEOUT_MS = 500;

let cluster: Cluster;
let observer: NatsBus;
let redis: RedisConnection;
const buses: NatsBus[] = [];
const clients: WsTestClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({ mode: 'distributed', gateways: 1, roomServices: 1 });
  await cluster.createRoom(ROOM);
  observer = await NatsBus.connect({ servers: cluster.nats!.url, name: 'observer', log: silentLogger });
  redis = await connectRedis(cluster.redisUrl!, silentLogger);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  for (const bus of buses) await bus.close().catch(() => undefined);
  await observer?.close();
  await redis?.quit();
  await cluster?.stop();
});

async function connectAs(user: NatsUser): Promise<NatsBus> {
  const bus = await NatsBus.connect({ servers: cluster.nats!.plainUrl, ...cluster.nats!.credentials(user), name: `as-${user}`, log: silentLogger, onError: () => undefined });
  buses.push(bus);
  return bus;
}

/** A private message from `from` to `to`, as a gateway would forward it for an authenticated connection. */
/** A gateway's request carrying one `pm`. */
function pmRequest(from: string, to: string, id: string): ChatBatchRequest {
  return {
    requests: [{
      caller: { uid: from, role: 'viewer', device: 'web', gatewayId: 'gw0', connId: `conn-${id}` },
      frame: { t: 'pm', to, id, text: `a message from ${from}` },
    }],
  };
}

/** Every key of the private conversations and inboxes stored so far. */
const chatKeys = async () => [...(await redis.keys('rc:conv:*')), ...(await redis.keys('rc:user:*:inbox*'))];

describe('NATS permissions per role', () => {
  it('the gateway and the room service are logged in as their own users', async () => {
    const users = await cluster.nats!.connectionUsers();
    expect(users.get('gw0')).toBe('gateway');
    expect(users.get('room-service-0')).toBe('room-service');
  });

  it.each(UNPRIVILEGED)('a %s user cannot make a chat request in another user\'s name: the room service never gets it, nothing is stored', async (user) => {
    const seen: string[] = [];
    observer.subscribe(subjects.chat('send'), (message) => seen.push(message.subject));
    await observer.flush();
    const forger = await connectAs(user);

    await expect(call(forger, subjects.chat('send'), pmRequest('alice', 'bob', `forged-${user}`), REQUEST_TIMEOUT_MS)).rejects.toMatchObject({ code: 'timeout' });

    expect(seen).toEqual([]);
    expect(await chatKeys()).toEqual([]);
  });

  it('the same request from the gateway user is stored: the refusal above is the permission, not the request', async () => {
    const gateway = await connectAs('gateway');
    const reply = await call<ChatBatchRequest, ChatBatchReply>(gateway, subjects.chat('send'), pmRequest('carol', 'dave', 'genuine-1'), 3000);
    expect(reply.results).toEqual([{ ok: { frame: expect.objectContaining({ t: 'sent', id: 'genuine-1' }) } }]);
    expect((await chatKeys()).length).toBeGreaterThan(0);
  });

  it.each(UNPRIVILEGED)('a %s user cannot publish into room.<id> or gw.<id>', async (user) => {
    const forger = await connectAs(user);
    for (const subject of [subjects.room(ROOM), subjects.gateway('gw0')]) {
      const received: string[] = [];
      const marker = new Latch(1, `the marker on ${subject}`);
      const subscription = observer.subscribe(subject, (message) => {
        const text = new TextDecoder().decode(message.data);
        received.push(text);
        if (text === 'marker') marker.countDown();
      });
      await observer.flush();

      forger.publish(subject, new TextEncoder().encode('forged'));
      // The server has read (and refused) the forged publish once the forger's flush returns; a
      // publish that got through would reach the observer before the marker published after it.
      await forger.flush();
      observer.publish(subject, new TextEncoder().encode('marker'));
      await marker.wait();
      subscription.unsubscribe();

      expect(received, subject).toEqual(['marker']);
    }
  });

  it('a tools user may read the rooms (room.>): its tap for backend tooling', async () => {
    const tools = await connectAs('tools');
    const received = new Latch(1, 'a room message on the tools tap');
    tools.subscribe(`room.>`, () => received.countDown());
    await tools.flush();
    const posted = await cluster.api('POST', `/v1/rooms/${ROOM}/messages`, { kind: 'system', text: 'hello tools' });
    expect(posted.status).toBe(201);
    await received.wait();
  });
});

describe('Redis ACL users', () => {
  it.each(['gateway', 'room-service'] as const)('the %s user may use keys under rc: only, and no administrative command', async (user) => {
    const url = cluster.redisUrl!.replace(`default:${TEST_REDIS_PASSWORDS.default}@`, `${user}:${TEST_REDIS_PASSWORDS[user]}@`);
    const client = await connectRedis(url, silentLogger);
    try {
      expect(await client.set('rc:acl-probe', '1')).toBe('OK');
      await expect(client.set('other:acl-probe', '1')).rejects.toThrow(/NOPERM/);
      await expect(client.flushdb()).rejects.toThrow(/NOPERM/);
      await expect(client.config('GET', 'maxmemory')).rejects.toThrow(/NOPERM/);
      await expect(client.keys('rc:*')).rejects.toThrow(/NOPERM/);
      await expect(client.publish('room.lobby', 'x')).rejects.toThrow(/NOPERM/);
    } finally {
      await client.del('rc:acl-probe');
      await client.quit();
    }
  });
});

describe('start-up with a wrong password', () => {
  it('the bus refuses to start and names the user and the settings to check', async () => {
    await expect(NatsBus.connect({ servers: cluster.nats!.plainUrl, user: 'gateway', password: 'wrong', name: 'wrong-password', log: silentLogger }))
      .rejects.toThrow(/refused the credentials of user 'gateway'.*ROOMCAST_NATS_USER and ROOMCAST_NATS_PASSWORD/);
  });

  it('a Redis client with a wrong password fails at once with what Redis said', async () => {
    const wrong = cluster.redisUrl!.replace(/:[^:@/]*@/, ':wrong@').replace('//default:', '//gateway:');
    await expect(connectRedis(wrong, silentLogger)).rejects.toThrow(/cannot connect to Redis at redis:\/\/gateway:\*\*\*@.*WRONGPASS/);
  });

  it('a gateway process with a wrong NATS password exits with that error instead of running', async () => {
    const env = { PATH: process.env.PATH ?? '', ...cluster.processEnv('gateway'), ROOMCAST_NATS_PASSWORD: 'wrong', ROOMCAST_GATEWAY_ID: 'gw-wrong', ROOMCAST_LOG_LEVEL: 'info' };
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile(process.execPath, [CLI, 'gateway'], { env, timeout: 30_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, output: stdout + stderr });
      });
    });
    expect(code).not.toBe(0);
    expect(output).toMatch(/refused the credentials of user 'gateway'/);
  });
});

describe('the gateway and the room service at work as their users', () => {
  it('a viewer joins, a backend publishes, the viewer gets it; a private message is stored and delivered', async () => {
    const viewer = await WsTestClient.connect(cluster.gateways[0]!.url, { token: await cluster.token('erin') });
    clients.push(viewer);
    viewer.send({ t: 'join', room: ROOM });
    await viewer.next((f) => f.t === 'joined' && f.room === ROOM);
    await cluster.api('POST', `/v1/rooms/${ROOM}/messages`, { kind: 'gift', text: 'a rose' });
    await viewer.next((f) => f.t === 'messages' && JSON.stringify(f).includes('a rose'));

    const sender = await WsTestClient.connect(cluster.gateways[0]!.url, { token: await cluster.token('frank') });
    clients.push(sender);
    sender.send({ t: 'pm', to: 'erin', id: 'pm-1', text: 'hi erin' });
    await sender.next((f) => f.t === 'sent' && f.id === 'pm-1');
    await viewer.next((f) => f.t === 'inbox' && JSON.stringify(f).includes('hi erin'));
  });
});
