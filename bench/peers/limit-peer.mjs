/**
 * Limit peer: the least a server must do to deliver Roomcast's batches — uWS.js (the same native
 * binding the gateway runs on) accepting the same connections and joins, and publishing each room's
 * batch frame once per batch window to the room's topic. No bus, no sequencer, no slow-consumer
 * checks: its CPU per delivery, beside the gateway's at the same step, says how close Roomcast
 * comes to what this machine can do (the efficiency ratio in the report).
 *
 * It speaks Roomcast's msgpack frames (welcome, join → joined, then `messages`), so the same load
 * clients drive it. Nothing is relayed: the harness tells it what to publish, over HTTP on the same
 * port. With Roomcast in the run, it replays Roomcast's own frames, byte for byte:
 *
 *   POST /replay  body {files, stepStartsUs}: the recording of Roomcast's frames (frame-recording.mjs)
 *     and when each of its steps started; before the clients connect, so that each room's joins
 *     answer the seq before its first recorded frame. Answers {rooms, frames, messages}
 *   POST /drive?step=I
 *     publishes step I's recorded frames at the times they reached Roomcast's recording connection
 *     (after its step's start), each with its stamps and ts moved by the time between the two
 *     steps' starts and nothing else changed; answers {sent, frames, maxLagMs} when done
 *
 * Without a recording (no Roomcast in the run, or Node load clients) it makes frames of the same
 * layout itself:
 *
 *   POST /drive?rate=R&windowMs=W&maxMessages=M&durationMs=D&textBytes=B&rooms=PREFIX&roomCount=N
 *     for D ms, each of the N rooms gets R / N messages per second, scheduled at t0 + n / rate (the
 *     schedule time in µs on CLOCK_MONOTONIC starts each text, as the harness's senders write it);
 *     every W ms each room with messages due gets one frame of them (several of at most M each
 *     when more are due), laid out as Roomcast's batches
 *     ({t, room, msgs: [{seq, uid, kind, prio, text, ts, cid}]}); answers {sent, frames, maxLagMs}
 *   GET /seq?room=R   a room's last seq
 *
 * With BENCH_LIMIT_ACK_SENDS=1 (the `limit-sends` target) it also takes the senders' `send` frames, as
 * Roomcast's gateway must, and answers each at once with an `ack` of Roomcast's layout: still nothing
 * relayed or stored, so its CPU is the least a server spends on the same traffic both ways.
 *
 * BENCH_PEER_PORT (0: any free port); prints `listening PORT`.
 */
import { createRequire } from 'node:module';
import { encode, decode } from '../lib/msgpackr.mjs';
import { nowUs, stampOf } from '../lib/clock.mjs';
import { replayFrame, replayPlan } from '../lib/frame-recording.mjs';

const require = createRequire(import.meta.url);
const uws = require('uWebSockets.js');
// As the gateway does (src/gateway/uws-server.ts): never measure the slow JavaScript fallback.
if (!String(uws.App).includes('[native code]')) {
  process.stderr.write('limit peer: uWebSockets.js did not load its native binding\n');
  process.exit(1);
}

const SUBPROTOCOL = 'roomcast.v1.msgpack';
const ACK_SENDS = process.env.BENCH_LIMIT_ACK_SENDS === '1';
/** Room name → last seq published (and joined members, for `viewers`). */
const rooms = new Map();
let nextUid = 0;

function roomOf(name) {
  let room = rooms.get(name);
  if (!room) rooms.set(name, (room = { seq: 0, members: 0 }));
  return room;
}

const app = uws.App();
app.ws('/ws', {
  compression: uws.DISABLED,
  maxPayloadLength: 64 * 1024,
  // Large enough that no viewer is dropped for backpressure: every frame is written, as Roomcast does within bounds.
  maxBackpressure: 64 * 1024 * 1024,
  idleTimeout: 0,
  upgrade: (res, req, context) => {
    const offered = req.getHeader('sec-websocket-protocol');
    if (offered && !offered.split(',').map((p) => p.trim()).includes(SUBPROTOCOL)) {
      res.writeStatus('400 Bad Request').end();
      return;
    }
    res.upgrade({ uid: `u${nextUid++}`, joined: [] }, req.getHeader('sec-websocket-key'), offered ? SUBPROTOCOL : '',
      req.getHeader('sec-websocket-extensions'), context);
  },
  open: (ws) => {
    const { uid } = ws.getUserData();
    ws.send(encode({ t: 'welcome', session: uid, uid, role: 'viewer', heartbeatMs: 30000, protocol: 1, limits: {} }), true);
  },
  message: (ws, data) => {
    let frame;
    try { frame = decode(Buffer.from(data)); } catch { ws.end(1007, 'bad frame'); return; }
    if (frame?.t === 'join' && typeof frame.room === 'string') {
      const room = roomOf(frame.room);
      room.members++;
      ws.getUserData().joined.push(frame.room);
      ws.subscribe(frame.room);
      ws.send(encode({ t: 'joined', room: frame.room, seq: room.seq, msgs: [], viewers: room.members }), true);
    } else if (frame?.t === 'ping') {
      ws.send(encode({ t: 'pong', ...(frame.ts !== undefined ? { ts: frame.ts } : {}) }), true);
    } else if (ACK_SENDS && frame?.t === 'send' && typeof frame.room === 'string') {
      ws.send(encode({ t: 'ack', id: frame.id, room: frame.room, seq: roomOf(frame.room).seq }), true);
    }
    // A `send` is never relayed: this peer publishes what the harness asks for (see /drive).
  },
  close: (ws) => { for (const name of ws.getUserData().joined) roomOf(name).members--; },
});

app.get('/seq', (res, req) => {
  const name = new URLSearchParams(req.getQuery() ?? '').get('room') ?? '';
  res.end(String(rooms.get(name)?.seq ?? 0));
});

/** Roomcast's recorded frames per step (POST /replay), or null: synthetic frames. */
let replay = null;

app.post('/replay', (res) => {
  let aborted = false;
  res.onAborted(() => { aborted = true; });
  const chunks = [];
  res.onData((chunk, last) => {
    chunks.push(Buffer.from(chunk.slice(0)));
    if (!last) return;
    let answer;
    try {
      const { files, stepStartsUs } = JSON.parse(Buffer.concat(chunks).toString());
      replay = replayPlan(files, stepStartsUs);
      for (const [name, seq] of Object.entries(replay.firstSeqs)) roomOf(name).seq = seq;
      answer = { status: '200 OK', body: { rooms: Object.keys(replay.firstSeqs).length, frames: replay.steps.reduce((sum, step) => sum + step.frames, 0), messages: replay.steps.reduce((sum, step) => sum + step.messageTotal, 0) } };
    } catch (error) {
      answer = { status: '400 Bad Request', body: { error: error.message } };
    }
    if (!aborted) res.cork(() => res.writeStatus(answer.status).writeHeader('content-type', 'application/json').end(JSON.stringify(answer.body)));
  });
});

app.post('/drive', (res, req) => {
  const query = new URLSearchParams(req.getQuery() ?? '');
  const number = (name) => Number(query.get(name));
  let aborted = false;
  res.onAborted(() => { aborted = true; });
  const answer = (status, result) => {
    if (!aborted) res.cork(() => res.writeStatus(status).writeHeader('content-type', 'application/json').end(JSON.stringify(result)));
  };
  if (query.has('step')) {
    const plan = replay?.steps[number('step')];
    if (!plan) { answer('400 Bad Request', { error: `no recorded step ${query.get('step')}` }); return; }
    replayStep(plan, replay.rooms).then((result) => answer('200 OK', result), (error) => answer('500 Internal Server Error', { error: error.message }));
    return;
  }
  drive({
    rate: number('rate'), windowMs: number('windowMs'), maxMessages: Math.max(1, number('maxMessages') || 200),
    durationMs: number('durationMs'), textBytes: number('textBytes'),
    prefix: query.get('rooms') ?? 'hot', roomCount: Math.max(1, number('roomCount') || 1),
  }).then((result) => answer('200 OK', result));
});

/**
 * Publishes one step's recorded frames, each at its recorded time after this step's start, on a
 * timer that wakes for the next frame due; the stamps move by this step's start minus Roomcast's.
 */
function replayStep(plan, names) {
  const startUs = nowUs();
  let next = 0; let sent = 0; let maxLagUs = 0;
  return new Promise((resolve, reject) => {
    const step = () => {
      try {
        const now = nowUs();
        while (next < plan.frames && startUs + plan.dueUs[next] <= now) {
          const frame = replayFrame(plan, next, startUs - plan.startUs);
          const name = names[plan.roomIndex[next]];
          app.publish(name, frame, true);
          const room = roomOf(name);
          if (plan.lastSeq[next] > room.seq) room.seq = plan.lastSeq[next];
          maxLagUs = Math.max(maxLagUs, now - startUs - plan.dueUs[next]);
          sent += plan.messages[next];
          next++;
        }
        if (next === plan.frames) { resolve({ sent, frames: plan.frames, maxLagMs: maxLagUs / 1000 }); return; }
        setTimeout(step, Math.max(0, (startUs + plan.dueUs[next] - nowUs()) / 1000));
      } catch (error) {
        reject(error);
      }
    };
    step();
  });
}

/**
 * Publishes the schedule: a timer per batch window, on a fixed grid (t0 + k × windowMs) so late
 * ticks do not stretch the step; each tick publishes, per room, the messages now due.
 */
function drive({ rate, windowMs, maxMessages, durationMs, textBytes, prefix, roomCount }) {
  const names = Array.from({ length: roomCount }, (_, i) => (roomCount === 1 ? prefix : `${prefix}${i}`));
  const perRoomIntervalUs = (1e6 * roomCount) / rate;
  const total = Math.floor((durationMs / 1000) * rate);
  const perRoomTotal = Math.floor(total / roomCount);
  const periodMs = windowMs;
  const filler = 'x'.repeat(Math.max(0, textBytes));
  const startUs = nowUs();
  // Rooms start a slice of the schedule apart, as the harness's senders spread them.
  const due = names.map((name, i) => ({ name, room: roomOf(name), sent: 0, offsetUs: (i * perRoomIntervalUs) / roomCount }));
  let sent = 0; let frames = 0; let maxLagUs = 0; let tick = 0;
  return new Promise((resolve) => {
    const step = () => {
      const now = nowUs();
      let remaining = false;
      for (const entry of due) {
        const upTo = Math.min(perRoomTotal, Math.floor((now - startUs - entry.offsetUs) / perRoomIntervalUs) + 1);
        while (upTo > entry.sent) {
          const msgs = [];
          const end = Math.min(upTo, entry.sent + maxMessages);
          for (let n = entry.sent; n < end; n++) {
            const scheduledUs = startUs + entry.offsetUs + n * perRoomIntervalUs;
            if (now - scheduledUs > maxLagUs) maxLagUs = now - scheduledUs;
            const stamp = stampOf(scheduledUs);
            const seq = ++entry.room.seq;
            msgs.push({ seq, uid: 's0', kind: 'chat', prio: 0, text: stamp + filler.slice(stamp.length), ts: Date.now(), cid: `s0-${seq}` });
          }
          sent += msgs.length;
          entry.sent = end;
          frames++;
          app.publish(entry.name, encode({ t: 'messages', room: entry.name, msgs }), true);
        }
        if (entry.sent < perRoomTotal) remaining = true;
      }
      if (!remaining) { resolve({ sent, frames, maxLagMs: maxLagUs / 1000 }); return; }
      tick++;
      setTimeout(step, Math.max(0, startUs / 1000 + tick * periodMs - nowUs() / 1000));
    };
    step();
  });
}

app.listen('127.0.0.1', Number(process.env.BENCH_PEER_PORT ?? 0), (listenSocket) => {
  if (!listenSocket) { process.stderr.write('limit peer: listen failed\n'); process.exit(1); }
  process.stdout.write(`listening ${uws.us_socket_local_port(listenSocket)}\n`);
});
process.on('SIGTERM', () => process.exit(0));
