#!/usr/bin/env node
/**
 * The gateway's own CPU per room message on its room side, in one process, without sockets: the
 * RoomFanout of dist/ (so `npm run build` first) on the in-process bus, rooms of `--viewers` fake
 * connections, and a publisher that writes nothing (uWS's C++ fan-out is left out: this is the
 * JavaScript work per message around it: decode, order, batch, encode, metrics).
 *
 * Messages come as NATS delivers them to a busy gateway: a few per event-loop turn (`--per-turn`),
 * spread over `--rooms` rooms at `--rate` messages per second in all, on a simulated clock (so the
 * batch windows see the rate, however fast this runs): in small rooms most messages are the first
 * after a quiet window and are written alone. Reports process CPU (user + system) per message over
 * `--messages`, after a warm-up: the median of `--runs` runs, and their minimum (on a shared machine
 * the run least disturbed by others).
 *
 *   node bench/fanout-cpu.mjs [--dist DIR] [--rooms 500] [--viewers 20] [--rate 1000] [--messages 200000] [--per-turn 4] [--runs 5]
 *
 * `--dist` points at another build (for a before/after comparison of two commits).
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const { values } = parseArgs({
  options: {
    dist: { type: 'string', default: 'dist' },
    rooms: { type: 'string', default: '500' },
    viewers: { type: 'string', default: '20' },
    rate: { type: 'string', default: '1000' },
    messages: { type: 'string', default: '200000' },
    'per-turn': { type: 'string', default: '4' },
    runs: { type: 'string', default: '5' },
  },
});
const dist = pathToFileURL(resolve(values.dist)).href;
const load = (path) => import(`${dist}/src/${path}`);
const [{ RoomFanout }, { RoomClient }, { RoomAccess }, { MemoryBus }, { serve }, { encodeBusMessage }, { silentLogger }, { GatewayMetrics, MetricsRegistry }, { subjects }] = await Promise.all([
  load('gateway/room-fanout.js'), load('gateway/room-client.js'), load('gateway/room-access.js'), load('shared/bus/memory-bus.js'), load('shared/bus/rpc.js'),
  load('shared/codec/codec.js'), load('shared/log.js'), load('shared/metrics.js'), load('shared/protocol/bus-messages.js'),
]);

const rooms = Number(values.rooms);
const viewers = Number(values.viewers);
const perTurn = Number(values['per-turn']);
const msPerMessage = 1000 / Number(values.rate);
/** Simulated time: it moves by 1 / rate per message published. */
let nowMs = Date.now();
const bus = new MemoryBus();
serve(bus, subjects.roomHistory, 'rooms', async () => ({ msgs: [], lastSeq: 0, firstSeq: 1 }), (error) => { throw error; });
// Every room exists and bans nobody: a join asks once per room, as a gateway does.
serve(bus, subjects.roomAccess, 'rooms', async () => ({ bans: [] }), (error) => { throw error; });
let written = 0;
const publisher = {
  publish: () => { written++; },
  // Builds that asked uWS for a topic's subscribers: the full msgpack topic has the room's viewers.
  subscribers: (topic) => (topic.startsWith('m/') ? viewers : 0),
};
const metrics = new GatewayMetrics(new MetricsRegistry());
const clock = { now: () => nowMs };
const roomClient = new RoomClient(bus, 5000, metrics);
const fanout = new RoomFanout({
  bus, publisher, clock, log: silentLogger, metrics, roomClient, access: new RoomAccess({ roomClient, clock }),
  settings: {
    batchWindowMs: 50, windowMsPer1000Viewers: 20, batchMaxMessages: 200, recentMessages: 20, reorderWindowMs: 100,
    historyPageMax: 200, ringSize: 200, roomBudgetPerSec: 0,
  },
});
fanout.start();
let connNumber = 0;
const conn = () => ({
  id: `c${connNumber++}`, identity: { uid: `u${connNumber}`, role: 'viewer', device: 'web' }, format: 'msgpack', closed: false, lastHeardMs: 0,
  send: () => 'sent', subscribe() {}, unsubscribe() {}, bufferedBytes: () => 0, end() {}, ping() {},
});
for (let room = 0; room < rooms; room++) {
  for (let i = 0; i < viewers; i++) await fanout.join(conn(), `room-${room}`);
}

const seqs = new Array(rooms).fill(0);
const text = 'x'.repeat(48);
let next = 0;
const turn = () => new Promise((done) => setImmediate(done));
/** Publishes `count` room messages as the room service does, a few per event-loop turn. */
async function drive(count) {
  for (let sent = 0; sent < count;) {
    for (let i = 0; i < perTurn && sent < count; i++, sent++) {
      const room = next++ % rooms;
      const seq = ++seqs[room];
      nowMs += msPerMessage;
      const m = { seq, uid: `s${room}`, kind: 'chat', prio: 0, text, ts: Math.floor(nowMs), cid: `c${seq}` };
      bus.publish(subjects.room(`room-${room}`), encodeBusMessage({ t: 'msgs', room: `room-${room}`, ms: [m] }));
    }
    await turn();
  }
  await turn();
}

const messages = Number(values.messages);
await drive(Math.min(messages, 20_000));
const results = [];
for (let run = 0; run < Number(values.runs); run++) {
  const before = process.cpuUsage();
  const writtenBefore = written;
  await drive(messages);
  const used = process.cpuUsage(before);
  results.push({ nsPerMessage: ((used.user + used.system) * 1000) / messages, writesPerMessage: (written - writtenBefore) / messages });
}
fanout.stop();
await bus.close();
results.sort((a, b) => a.nsPerMessage - b.nsPerMessage);
const median = results[Math.floor(results.length / 2)];
console.log(JSON.stringify({
  dist: values.dist, rooms, viewers, rate: Number(values.rate), perTurn, messages,
  cpuNsPerMessage: Math.round(median.nsPerMessage), minNsPerMessage: Math.round(results[0].nsPerMessage), runsNsPerMessage: results.map((r) => Math.round(r.nsPerMessage)),
  publishesPerMessage: Number(median.writesPerMessage.toFixed(3)),
}));
