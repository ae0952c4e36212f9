/**
 * Joins decided on the gateway from the room's rules it holds while subscribed (RoomAccess), and the
 * registry writes and chat logins batched per tick (Logins), over two gateways and two room-service
 * replicas on a real nats-server and redis-server, with real WebSocket clients. What moved off the
 * per-connection request path keeps its guarantee: bans (also set after the gateway read the room's
 * rules, and on the other gateway), unbans, ban expiry, unknown rooms, the device policy and private
 * messages right after connect. An observer counts the `svc.room.access` and `svc.chat.logins`
 * requests on the bus.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsBus } from '../../src/shared/bus/nats-bus.js';
import { silentLogger } from '../../src/shared/log.js';
import { subjects } from '../../src/shared/protocol/bus-messages.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/latch.js';
import { WsTestClient, type AnyFrame } from '../helpers/ws-client.js';

let cluster: Cluster;
let observer: NatsBus;
const requests = { access: 0, logins: 0 };
const clients: WsTestClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({ mode: 'distributed', gateways: 2, roomServices: 2, env: { ROOMCAST_AUTO_CREATE_ROOMS: 'false' } });
  observer = await NatsBus.connect({ servers: cluster.nats!.url, name: 'observer', log: silentLogger });
  observer.subscribe(subjects.roomAccess, () => { requests.access++; });
  observer.subscribe(subjects.chat('logins'), () => { requests.logins++; });
  await observer.flush();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await observer?.close();
  await cluster?.stop();
});

async function connect(uid: string, gateway: number, device = 'web'): Promise<WsTestClient> {
  const c = await WsTestClient.connect(cluster.gateways[gateway]!.url, { token: await cluster.token(uid, 'viewer', { device }) });
  clients.push(c);
  await c.next((f) => f.t === 'welcome');
  return c;
}

function join(c: WsTestClient, room: string): Promise<AnyFrame> {
  return c.request({ t: 'join', room }, 'joined');
}

async function ban(room: string, uid: string, durationMs?: number): Promise<void> {
  const response = await cluster.api('PUT', `/v1/rooms/${room}/bans/${uid}`, durationMs === undefined ? {} : { durationMs });
  expect(response.status).toBe(200);
}

async function unban(room: string, uid: string): Promise<void> {
  expect((await cluster.api('DELETE', `/v1/rooms/${room}/bans/${uid}`)).status).toBe(200);
}

/** Waits until both gateways are subscribed to the room (their rules are then held and kept current). */
async function heldByBoth(room: string): Promise<void> {
  await eventually(async () => expect(await cluster.subscriptionCount(subjects.room(room))).toBeGreaterThanOrEqual(2), { what: `both gateways hold ${room}` });
}

describe('joins decided on the gateway', () => {
  it('asks the room service once per room and gateway, however many join', async () => {
    await cluster.createRoom('crowd');
    await observer.flush();
    const before = requests.access;
    const viewers = await Promise.all(Array.from({ length: 12 }, (_, i) => connect(`crowd${i}`, i % 2)));
    const answers = await Promise.all(viewers.map((c) => join(c, 'crowd')));
    expect(answers.map((f) => f.t)).toEqual(viewers.map(() => 'joined'));
    const late = await connect('crowd-late', 0);
    expect((await join(late, 'crowd')).t).toBe('joined');
    await observer.flush();
    expect(requests.access - before).toBe(2);
  });

  it('refuses a banned user on a gateway that holds the room, and on one that opens it then', async () => {
    await cluster.createRoom('guarded');
    await ban('guarded', 'troll');
    const holder = await connect('holder', 0);
    expect((await join(holder, 'guarded')).t).toBe('joined');
    const trollHere = await connect('troll', 0);
    expect(await join(trollHere, 'guarded')).toMatchObject({ t: 'error', code: 'banned', room: 'guarded', ref: 'join' });
    const trollThere = await connect('troll', 1, 'ios');
    expect(await join(trollThere, 'guarded')).toMatchObject({ t: 'error', code: 'banned', room: 'guarded' });
  });

  it('a ban set after both gateways read the room\'s rules removes the user and refuses its joins on both; an unban lets it back', async () => {
    await cluster.createRoom('late-ban');
    const watchers = [await connect('watcher0', 0), await connect('watcher1', 1)];
    for (const w of watchers) expect((await join(w, 'late-ban')).t).toBe('joined');
    await heldByBoth('late-ban');
    const member = await connect('rowdy', 0);
    const elsewhere = await connect('rowdy', 1, 'ios');
    for (const c of [member, elsewhere]) expect((await join(c, 'late-ban')).t).toBe('joined');
    const accessBefore = requests.access;

    await ban('late-ban', 'rowdy', 60_000);
    // Each gateway holds the ban once it has removed the user (a join racing the ban's event could
    // still be admitted before it: docs/protocol.md 6.5).
    for (const c of [member, elsewhere]) {
      expect(await c.next((f) => f.t === 'left')).toMatchObject({ room: 'late-ban', reason: 'banned' });
      expect(await join(c, 'late-ban')).toMatchObject({ t: 'error', code: 'banned' });
    }

    await unban('late-ban', 'rowdy');
    // The unban travels on the room's subject: the gateways let the user in once they heard it.
    for (const c of [member, elsewhere]) {
      await eventually(async () => expect((await join(c, 'late-ban')).t).toBe('joined'), { what: 'the unbanned user joins' });
    }
    await observer.flush();
    expect(requests.access, 'decided from the rules the gateways hold').toBe(accessBefore);
  });

  it('a ban published while a gateway\'s bus connection was down is honoured once it is back', async () => {
    await cluster.createRoom('outage');
    const holder = await connect('outage-holder', 1);
    expect((await join(holder, 'outage')).t).toBe('joined');
    const busConnected = async () => {
      const text = await (await fetch(cluster.gateways[1]!.metricsUrl)).text();
      return /^roomcast_gateway_bus_connected (\d+)/m.exec(text)?.[1];
    };
    cluster.gateways[1]!.natsLink!.cut();
    await eventually(async () => expect(await busConnected()).toBe('0'), { what: 'the gateway saw its bus connection drop' });
    await ban('outage', 'sneaky');
    cluster.gateways[1]!.natsLink!.restore();
    await eventually(async () => expect(await busConnected()).toBe('1'), { timeoutMs: 20_000, what: 'the gateway reconnected' });
    const sneaky = await connect('sneaky', 1);
    // Until the room's rules are read again the gateway answers unavailable, never a stale admission.
    const answer = await eventually(async () => {
      const frame = await join(sneaky, 'outage');
      expect(frame.code).not.toBe('unavailable');
      return frame;
    }, { what: 'the rules read again' });
    expect(answer).toMatchObject({ t: 'error', code: 'banned', room: 'outage' });
  });

  it('honours an expired ban by its expiry time', async () => {
    await cluster.createRoom('short-ban');
    const napper = await connect('napper', 0);
    expect((await join(napper, 'short-ban')).t).toBe('joined');
    // Long enough that the refused join fits in it on a loaded CI machine.
    const banMs = 4000;
    const bannedAt = Date.now();
    await ban('short-ban', 'napper', banMs);
    // The gateway holds the ban once it has removed the user (a join racing the ban's event could
    // still be admitted before it: docs/protocol.md 6.5).
    expect(await napper.next((f) => f.t === 'left')).toMatchObject({ room: 'short-ban', reason: 'banned' });
    expect(await join(napper, 'short-ban')).toMatchObject({ t: 'error', code: 'banned' });
    const joinedAt = await eventually(async () => {
      const answer = await join(napper, 'short-ban');
      expect(answer.t).toBe('joined');
      return Date.now();
    }, { timeoutMs: 15_000, intervalMs: 100, what: 'the ban expires' });
    expect(joinedAt - bannedAt).toBeGreaterThanOrEqual(banMs);
  });

  it('refuses an unknown room with unknown_room every time (rooms are not created on join), and admits it once created', async () => {
    const c = await connect('wanderer', 0);
    expect(await join(c, 'nowhere')).toMatchObject({ t: 'error', code: 'unknown_room', room: 'nowhere', ref: 'join' });
    expect(await join(c, 'nowhere')).toMatchObject({ t: 'error', code: 'unknown_room', room: 'nowhere' });
    await cluster.createRoom('nowhere');
    expect((await join(c, 'nowhere')).t).toBe('joined');
  });

  it('a switch to a room the user is banned from leaves it in the room it was in', async () => {
    await cluster.createRoom('from-room');
    await cluster.createRoom('to-room');
    await ban('to-room', 'switcher');
    const c = await connect('switcher', 1);
    expect((await join(c, 'from-room')).t).toBe('joined');
    expect(await c.request({ t: 'switch', from: 'from-room', to: 'to-room' }, 'joined')).toMatchObject({ t: 'error', code: 'banned', room: 'to-room' });
    expect(await c.request({ t: 'room_stats', room: 'from-room' }, 'room_stats')).toMatchObject({ t: 'room_stats', room: 'from-room' });
  });
});

describe('registry writes and chat logins batched per tick', () => {
  it('connections opened together share one login request, and each gets its own login push', async () => {
    await observer.flush();
    const before = requests.logins;
    const crowd = await Promise.all(Array.from({ length: 20 }, (_, i) => connect(`batch${i}`, 0)));
    await Promise.all(crowd.map((c) => c.next((f) => f.t === 'inbox')));
    await observer.flush();
    expect(requests.logins - before).toBeGreaterThanOrEqual(1);
    expect(requests.logins - before).toBeLessThan(crowd.length);
  });

  it('a private message reaches a device right after it connected', async () => {
    const sender = await connect('early-sender', 1);
    await sender.next((f) => f.t === 'inbox');
    const recipient = await connect('early-bird', 0);
    // No wait for the login push: stored before the login's read, the message comes with the push;
    // after it, the registry (written before the login) routes it live.
    expect((await sender.request({ t: 'pm', to: 'early-bird', id: 'hi', text: 'welcome' }, 'sent')).t).toBe('sent');
    await recipient.next((f) => f.t === 'inbox' && (f.msgs as Array<{ text: string }>).some((m) => m.text === 'welcome'));
  });

  it('the login push carries what arrived while the user was offline', async () => {
    const sender = await connect('offline-sender', 1);
    expect((await sender.request({ t: 'pm', to: 'sleeper', id: 'while-away', text: 'while you were away' }, 'sent')).t).toBe('sent');
    const sleeper = await connect('sleeper', 0);
    const push = await sleeper.next((f) => f.t === 'inbox');
    expect((push.msgs as Array<{ text: string }>).map((m) => m.text)).toEqual(['while you were away']);
  });

  it('the device policy still replaces an older connection of the same device type, also within one batch', async () => {
    const old = await connect('twin', 0, 'ios');
    await old.next((f) => f.t === 'inbox');
    const [a, b] = await Promise.all([connect('twin', 1, 'ios'), connect('twin', 1, 'ios')]);
    expect(await old.closed()).toBe(4010);
    // Of the two that opened together, the one with the smaller connection id is the older one.
    await eventually(() => expect([a.closeCode, b.closeCode].filter((code) => code === 4010)).toHaveLength(1), { what: 'one of the pair replaced' });
  });
});
