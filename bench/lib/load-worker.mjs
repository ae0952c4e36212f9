/**
 * A load-generator process (forked by the harness, pinned to its core): opens its share of the
 * connections, joins their rooms, counts every message cheaply, fully decodes a sample of
 * connections for end-to-end latency and seq checks, and, when told, sends at a scheduled rate.
 *
 * It speaks three protocols with the same raw client: Roomcast (`roomcast`), the plain `ws` peer
 * (`ws-peer`, the same msgpack frames without batching) and Socket.IO (`socketio`, engine.io v4 over
 * the websocket transport, JSON text packets).
 *
 * Commands arrive over IPC as `{ cmd, ... }` and are answered with `{ ev, ... }` (see `handlers`).
 */
import { RawWsConnection, OPCODE_TEXT } from './ws-client.mjs';
import { peekMessages, seqResult, NOT_MESSAGES } from './msgpack-peek.mjs';
import { encode, decode } from './msgpackr.mjs';
import { createHistogram, record, serialize } from './hdr-histogram.mjs';
import { signToken } from './token.mjs';
import { nowUs, stampOf } from './clock.mjs';
import { AckedSeqs, SendAnswers } from './send-answers.mjs';

const SUBPROTOCOL = 'roomcast.v1.msgpack';
const SOCKETIO_PATH = '/socket.io/?EIO=4&transport=websocket';
const SIO_MSG_PREFIX = Buffer.from('42["msg",');
const SIO_JOINED_PREFIX = Buffer.from('42["joined",');
const SEND_TICK_MS = 1;

/**
 * @typedef {object} WorkerConfig
 * @property {'roomcast'|'ws-peer'|'socketio'} protocol
 * @property {string} host
 * @property {number} port
 * @property {string} secret                 HS256 secret for Roomcast tokens
 * @property {number} startIndex             global index of this worker's first connection
 * @property {number} count                  connections of this worker
 * @property {{ prefix: string, count: number }} rooms  connection i is in `${prefix}${i % count}` (or `prefix` when count is 1)
 * @property {number[]} sampled              global indexes of the connections to decode fully
 * @property {boolean} trackSeqs             read every message's seq on every connection (slower)
 * @property {number} connectConcurrency     handshakes in flight at once
 * @property {number} perAddress             connections per 127.0.0.x source address
 * @property {string} uidPrefix
 * @property {'room'|'pm'|'gm'} mode       `pm`: no room; connection i sends private messages to i ^ 1;
 *                                          `gm`: no room; every connection is a member of `group` and senders send to it
 * @property {string} [group]                the group of `gm`
 * @property {boolean} [trackAnswers]     Roomcast room sends: time each answer and check every acked
 *                                          seq reaches the sending connection (senders only)
 */

/** @type {WorkerConfig} */
let config;
/** @type {LoadConn[]} */
const conns = [];
let histogram = createHistogram();
/** Private messages: scheduled send time → `sent` (stored) latency. */
let ackHistogram = createHistogram();
/** Private messages sent and not yet answered: id → scheduled time (µs). */
const pendingPms = new Map();
/** Private messages stored (`sent`) since the worker started: the audit's expected deliveries. */
let storedTotal = 0;
let latencyFromUs = 0;
let latencyToUs = Number.POSITIVE_INFINITY;
let counters = freshCounters();
let nextSendId = 0;
/** Messages received since the worker started, never reset: completeness over a whole step. */
let totalMessages = 0;
/** How the current step's room sends are answered (Roomcast senders; a new one per `send` command). */
let answers = null;
/** Which step (counted from 0 by `send` commands) the current sends belong to. */
let stepIndex = -1;

function freshCounters() {
  return { frames: 0, messages: 0, sampledMessages: 0, sent: 0, acked: 0, gapSeqs: 0, errors: {}, closes: {} };
}

class LoadConn {
  constructor(index, room, sampled) {
    this.index = index;
    this.uid = `${config.uidPrefix}${index}`;
    this.room = room;
    this.sampled = sampled;
    // A sender decodes its room's messages fully to find its own acked seqs among them.
    this.decodes = sampled || Boolean(config.trackAnswers);
    this.trackSeqs = this.decodes || config.trackSeqs;
    /** @type {RawWsConnection | null} */
    this.ws = null;
    this.joined = false;
    this.everJoined = false;
    /** The room's seq when this connection first joined: it should receive every seq after it. */
    this.firstJoinedSeq = 0;
    this.received = 0;
    this.lastSeq = 0;
    this.missing = 0;
    this.duplicates = 0;
    this.reportedGapSeqs = 0;
    /** A sender's acked seqs against its own messages in its room's stream. */
    this.ackedSeqs = config.trackAnswers ? new AckedSeqs() : null;
    /** Settles the pending connect / rejoin. */
    this.settle = null;
  }
}

// ---- receiving ----------------------------------------------------------------------------------

function onFrame(conn, opcode, payload) {
  if (config.protocol === 'socketio') { onSocketIoFrame(conn, payload); return; }
  if (conn.joined) {
    const count = peekMessages(payload, conn.trackSeqs && !conn.decodes);
    if (count >= 0) {
      counters.frames++;
      counters.messages += count;
      totalMessages += count;
      conn.received += count;
      if (conn.decodes) decodedMessages(conn, decode(payload).msgs);
      else if (conn.trackSeqs && count > 0) applySeqRange(conn, seqResult.first, seqResult.last, seqResult.holes);
      return;
    }
    if (count !== NOT_MESSAGES) { onRoomcastFrame(conn, decode(payload), true); return; }
  }
  onRoomcastFrame(conn, opcode === OPCODE_TEXT ? JSON.parse(payload.toString('utf8')) : decode(payload), false);
}

function onRoomcastFrame(conn, frame, uncounted) {
  switch (frame.t) {
    case 'welcome':
      conn.welcomed = true;
      conn.phaseUs[2] = nowUs();
      if (config.mode !== 'room') break; // ready at the login inbox push
      sendJoin(conn);
      break;
    case 'joined':
      onJoined(conn, frame.seq, frame.msgs ?? [], frame.gap);
      break;
    case 'messages':
      if (uncounted) {
        counters.frames++;
        counters.messages += frame.msgs.length;
        totalMessages += frame.msgs.length;
        conn.received += frame.msgs.length;
      }
      if (conn.decodes) decodedMessages(conn, frame.msgs);
      else if (conn.trackSeqs) for (const m of frame.msgs) applySeq(conn, m.seq);
      break;
    case 'ack':
      counters.acked++;
      answers?.answered(frame.id, null, nowUs());
      conn.ackedSeqs?.acked(frame.seq, stepIndex);
      break;
    case 'inbox':
      onInbox(conn, frame);
      break;
    case 'group_msgs':
      onGroupMessages(conn, frame);
      break;
    case 'sent': {
      counters.acked++;
      storedTotal++;
      if (!frame.duplicate && config.mode === 'pm') noteInboxSeq(conn, frame.seq);
      const scheduledUs = pendingPms.get(frame.id);
      pendingPms.delete(frame.id);
      if (scheduledUs !== undefined && scheduledUs >= latencyFromUs && scheduledUs < latencyToUs) record(ackHistogram, nowUs() - scheduledUs);
      break;
    }
    case 'gap':
      counters.gapSeqs += frame.to - frame.from + 1;
      conn.reportedGapSeqs += frame.to - frame.from + 1;
      if (frame.to > conn.lastSeq) conn.lastSeq = frame.to;
      break;
    case 'error':
      counters.errors[frame.code] = (counters.errors[frame.code] ?? 0) + 1;
      if (frame.id !== undefined) pendingPms.delete(frame.id);
      if (frame.ref === 'send' && frame.id !== undefined) answers?.answered(frame.id, frame.code, nowUs());
      if (frame.ref === 'join' && conn.settle && frame.code === 'overloaded') {
        // As a client does: join again after retryAfterMs (the open's timeout still bounds it).
        const ws = conn.ws;
        setTimeout(() => { if (conn.settle && conn.ws === ws) sendJoin(conn); }, frame.retryAfterMs ?? 100);
      } else if (frame.ref === 'join' && conn.settle) conn.settle(`join refused: ${frame.code}`);
      break;
    default:
      break; // viewers, pong, notice, left, reconnect
  }
}

function sendJoin(conn) {
  conn.ws.send(encode(conn.everJoined ? { t: 'join', room: conn.room, lastSeq: conn.lastSeq } : { t: 'join', room: conn.room }));
}

function onJoined(conn, seq, msgs, gap) {
  if (!conn.everJoined) {
    conn.firstJoinedSeq = seq;
    conn.lastSeq = seq;
  } else {
    // A rejoin with lastSeq: the missed messages arrive in `msgs`, a lost range in `gap`.
    if (gap) {
      conn.reportedGapSeqs += gap.to - gap.from + 1;
      counters.gapSeqs += gap.to - gap.from + 1;
      if (gap.to > conn.lastSeq) conn.lastSeq = gap.to;
    }
    conn.received += msgs.length;
    for (const m of msgs) applySeq(conn, m.seq);
    if (conn.ackedSeqs) noteOwnMessages(conn, msgs);
    if (seq > conn.lastSeq) { conn.missing += seq - conn.lastSeq; conn.lastSeq = seq; }
  }
  conn.joined = true;
  conn.everJoined = true;
  conn.settle?.(null);
}

/**
 * Private messages pushed to this user. In private and group chat the login push (it has `cursor`)
 * makes the connection ready (in a room, only `joined` does: a connection whose joins were all
 * refused still gets its login push, and must not send as a member);
 * live pushes are counted, checked for inbox-seq holes, timed (every one: they are decoded anyway)
 * and acknowledged with `inbox_ack`, as a client does.
 */
function onInbox(conn, frame) {
  if (config.mode !== 'room' && frame.cursor !== undefined && !conn.everJoined) {
    conn.lastSeq = frame.lastSeq ?? frame.cursor;
    conn.firstJoinedSeq = conn.lastSeq;
    conn.inboxMax = conn.lastSeq;
    conn.joined = true;
    conn.everJoined = true;
    conn.settle?.(null);
  }
  const msgs = frame.msgs ?? [];
  if (msgs.length === 0) return;
  counters.frames++;
  counters.messages += msgs.length;
  totalMessages += msgs.length;
  conn.received += msgs.length;
  const now = nowUs();
  for (const m of msgs) {
    noteInboxSeq(conn, m.seq);
    const scheduledUs = Number.parseInt(m.text, 10);
    if (scheduledUs >= latencyFromUs && scheduledUs < latencyToUs) {
      record(histogram, now - scheduledUs);
      counters.sampledMessages++;
    }
  }
  conn.ws.send(encode({ t: 'inbox_ack', seq: conn.inboxMax }));
}

/** Group messages pushed to a member: counted and timed (every one; they are decoded anyway). */
function onGroupMessages(conn, frame) {
  counters.frames++;
  counters.messages += frame.msgs.length;
  totalMessages += frame.msgs.length;
  conn.received += frame.msgs.length;
  const now = nowUs();
  for (const m of frame.msgs) {
    const scheduledUs = Number.parseInt(m.text, 10);
    if (scheduledUs >= latencyFromUs && scheduledUs < latencyToUs) {
      record(histogram, now - scheduledUs);
      counters.sampledMessages++;
    }
  }
}

/**
 * A user's inbox seq counts the messages it received and the ones it sent (each gets a seq in both
 * inboxes), and pushes and `sent` answers may arrive in either order: holes are counted at the end
 * as the highest seq seen minus the seqs seen.
 */
function noteInboxSeq(conn, seq) {
  conn.inboxSeen = (conn.inboxSeen ?? 0) + 1;
  if (seq > (conn.inboxMax ?? 0)) conn.inboxMax = seq;
}

function applySeq(conn, seq) {
  if (seq <= conn.lastSeq) { conn.duplicates++; return; }
  if (seq > conn.lastSeq + 1) conn.missing += seq - conn.lastSeq - 1;
  conn.lastSeq = seq;
}

function applySeqRange(conn, first, last, holes) {
  if (first <= conn.lastSeq) conn.duplicates++;
  else if (first > conn.lastSeq + 1) conn.missing += first - conn.lastSeq - 1;
  conn.missing += holes;
  if (last > conn.lastSeq) conn.lastSeq = last;
}

/** Messages of a connection that decodes them: latency (sampled ones), seqs, a sender's own messages. */
function decodedMessages(conn, msgs) {
  if (conn.sampled) sampleMessages(conn, msgs);
  else for (const m of msgs) applySeq(conn, m.seq);
  if (conn.ackedSeqs) noteOwnMessages(conn, msgs);
}

function noteOwnMessages(conn, msgs) {
  for (const m of msgs) if (m.uid === conn.uid) conn.ackedSeqs.seen(m.seq);
}

/** Full decode of a sampled connection's messages: latency from the scheduled send time in the text. */
function sampleMessages(conn, msgs) {
  const now = nowUs();
  for (const m of msgs) {
    applySeq(conn, m.seq);
    const scheduledUs = Number.parseInt(m.text, 10);
    if (scheduledUs >= latencyFromUs && scheduledUs < latencyToUs) {
      record(histogram, now - scheduledUs);
      counters.sampledMessages++;
    }
  }
}

function startsWith(payload, prefix) {
  if (payload.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (payload[i] !== prefix[i]) return false;
  return true;
}

function onSocketIoFrame(conn, payload) {
  if (conn.joined && startsWith(payload, SIO_MSG_PREFIX)) {
    counters.frames++;
    counters.messages++;
    totalMessages++;
    conn.received++;
    if (conn.sampled) sampleMessages(conn, [JSON.parse(payload.toString('utf8', 2))[1]]);
    else if (conn.trackSeqs) applySeq(conn, JSON.parse(payload.toString('utf8', 2))[1].seq);
    return;
  }
  const kind = payload[0];
  if (kind === 0x30) { conn.ws.send('40'); return; } // engine.io open → socket.io connect
  if (kind === 0x32) { conn.ws.send('3'); return; } // ping → pong
  if (kind !== 0x34) return;
  if (payload[1] === 0x30) { conn.ws.send(`42${JSON.stringify(['join', conn.room])}`); return; } // connected
  if (startsWith(payload, SIO_JOINED_PREFIX)) {
    const [, body] = JSON.parse(payload.toString('utf8', 2));
    onJoined(conn, body.seq, [], undefined);
  }
}

// ---- connecting ----------------------------------------------------------------------------------

function roomOf(index) {
  return config.rooms.count === 1 ? config.rooms.prefix : `${config.rooms.prefix}${index % config.rooms.count}`;
}

function sourceAddress(index) {
  return `127.0.0.${2 + Math.floor(index / config.perAddress)}`;
}

/** Opens the connection and resolves once it has joined its room (or failed). */
function openConn(conn, timeoutMs) {
  return new Promise((resolve) => {
    let done = false;
    const timer = setTimeout(() => finish('timed out before joining'), timeoutMs);
    const finish = (failure) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      conn.settle = null;
      resolve(failure);
    };
    conn.settle = finish;
    conn.joined = false;
    conn.handshaken = false;
    conn.welcomed = false;
    conn.phaseUs = [nowUs(), 0, 0];
    const path = config.protocol === 'socketio' ? SOCKETIO_PATH : `/ws?token=${signToken(config.secret, conn.uid)}`;
    conn.ws = new RawWsConnection(
      { host: config.host, port: config.port, path, ...(config.protocol === 'socketio' ? {} : { protocol: SUBPROTOCOL }), localAddress: sourceAddress(conn.index) },
      {
        onOpen: () => { conn.handshaken = true; conn.phaseUs[1] = nowUs(); },
        onFrame: (opcode, payload) => onFrame(conn, opcode, payload),
        onClose: (code, reason) => {
          conn.joined = false;
          const key = String(code);
          counters.closes[key] = (counters.closes[key] ?? 0) + 1;
          finish(`closed ${code}${reason ? ` ${reason}` : ''} ${!conn.handshaken ? 'before the handshake completed' : !conn.welcomed ? 'after the handshake, before welcome' : 'after welcome'}`);
        },
      },
    );
  });
}

/** Runs `task` over `items` with at most `limit` in flight. */
async function inParallel(items, limit, task) {
  let next = 0;
  const lane = async () => { while (next < items.length) await task(items[next++]); };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

async function connectAll(timeoutMs) {
  const sampled = new Set(config.sampled);
  for (let i = 0; i < config.count; i++) {
    const index = config.startIndex + i;
    conns.push(new LoadConn(index, roomOf(index), sampled.has(index)));
  }
  const failures = {};
  let joined = 0;
  // Where set-up time goes: TCP + HTTP upgrade, upgrade → welcome (token check), welcome → joined.
  const phases = { handshakeMs: [], welcomeMs: [], joinMs: [] };
  await inParallel(conns, config.connectConcurrency, async (conn) => {
    const failure = await openConn(conn, timeoutMs);
    if (failure === null) {
      joined++;
      const [startUs, openUs, welcomeUs] = conn.phaseUs;
      phases.handshakeMs.push((openUs - startUs) / 1000);
      if (welcomeUs) {
        phases.welcomeMs.push((welcomeUs - openUs) / 1000);
        phases.joinMs.push((nowUs() - welcomeUs) / 1000);
      }
    } else {
      failures[failure] = (failures[failure] ?? 0) + 1;
    }
  });
  return { joined, failed: conns.length - joined, failures, phases };
}

// ---- sending -------------------------------------------------------------------------------------

/**
 * Sends `rate` messages per second for `durationMs`, round-robin over this worker's connections.
 * Message n is due at t0 + n / rate and carries that scheduled time, so a late send shows up as
 * latency (no coordinated omission).
 */
function sendAtRate(rate, durationMs, textBytes) {
  return new Promise((resolve) => {
    const senders = conns.filter((conn) => conn.joined);
    if (senders.length === 0 || rate <= 0) { resolve({ sent: 0 }); return; }
    const startUs = nowUs();
    const intervalUs = 1e6 / rate;
    const total = Math.floor((durationMs / 1000) * rate);
    let sent = 0;
    let maxLagUs = 0;
    const tick = () => {
      const now = nowUs();
      const due = Math.min(total, Math.floor((now - startUs) / intervalUs) + 1);
      while (sent < due) {
        const scheduledUs = startUs + sent * intervalUs;
        if (now - scheduledUs > maxLagUs) maxLagUs = now - scheduledUs;
        sendOne(senders[sent % senders.length], scheduledUs, textBytes);
        sent++;
      }
      if (sent < total) setTimeout(tick, SEND_TICK_MS);
      else resolve({ sent, maxLagMs: maxLagUs / 1000 });
    };
    tick();
  });
}

function sendOne(conn, scheduledUs, textBytes) {
  const stamp = stampOf(scheduledUs);
  const text = stamp.length >= textBytes ? stamp : stamp + 'x'.repeat(textBytes - stamp.length);
  counters.sent++;
  if (config.protocol === 'socketio') {
    conn.ws.send(`42${JSON.stringify(['send', { room: conn.room, text }])}`);
  } else if (config.mode === 'pm') {
    const id = `${conn.uid}-${nextSendId++}`;
    pendingPms.set(id, scheduledUs);
    conn.ws.send(encode({ t: 'pm', to: `${config.uidPrefix}${conn.index ^ 1}`, id, text }));
  } else if (config.mode === 'gm') {
    const id = `${conn.uid}-${nextSendId++}`;
    pendingPms.set(id, scheduledUs);
    conn.ws.send(encode({ t: 'gm', group: config.group, id, text }));
  } else {
    const id = `${conn.uid}-${nextSendId++}`;
    answers?.sent(id, nowUs());
    conn.ws.send(encode({ t: 'send', room: conn.room, id, text }));
  }
}

// ---- reconnect storm -------------------------------------------------------------------------------

/** Every connection drops at a random moment within `windowMs`, reconnects and rejoins with lastSeq. */
async function storm(windowMs, timeoutMs) {
  const startUs = nowUs();
  const recoverMs = [];
  const rejoinMs = [];
  const failures = {};
  await Promise.all(conns.map((conn) => new Promise((resolve) => {
    setTimeout(async () => {
      const droppedUs = nowUs();
      conn.ws?.destroy();
      const failure = await openConn(conn, timeoutMs);
      if (failure === null) {
        const now = nowUs();
        recoverMs.push((now - startUs) / 1000);
        rejoinMs.push((now - droppedUs) / 1000);
      } else {
        failures[failure] = (failures[failure] ?? 0) + 1;
      }
      resolve();
    }, Math.random() * windowMs);
  })));
  return { recovered: recoverMs.length, failed: conns.length - recoverMs.length, failures, recoverMs, rejoinMs };
}

// ---- audit ---------------------------------------------------------------------------------------

/**
 * Compares what each connection got with the rooms' final seqs. Connections that read seqs know
 * their exact holes; the others compare their message count with the seqs they should have seen.
 */
function audit(finalSeqs) {
  let missing = 0; let extra = 0; let reportedGapSeqs = 0; let audited = 0; let notJoined = 0;
  let sampledMissing = 0; let sampledDuplicates = 0;
  // Acked seqs the sending connection, a member of the room, never received (by step of the ack).
  const ackedMissingByStep = [];
  for (const conn of conns) {
    conn.ackedSeqs?.addMissing(ackedMissingByStep);
    if (!conn.joined) { notJoined++; continue; }
    const finalSeq = finalSeqs[conn.room];
    if (finalSeq === undefined) continue;
    audited++;
    reportedGapSeqs += conn.reportedGapSeqs;
    if (conn.trackSeqs) {
      const tail = Math.max(0, finalSeq - conn.lastSeq);
      missing += conn.missing + tail;
      extra += conn.duplicates;
      if (conn.sampled) { sampledMissing += conn.missing + tail; sampledDuplicates += conn.duplicates; }
    } else {
      const diff = finalSeq - conn.firstJoinedSeq - conn.reportedGapSeqs - conn.received;
      if (diff > 0) missing += diff; else extra -= diff;
    }
  }
  if (config.mode === 'gm') {
    const received = conns.reduce((sum, conn) => sum + conn.received, 0);
    return { audited: conns.length, notJoined, stored: storedTotal, received, unanswered: pendingPms.size };
  }
  if (config.mode === 'pm') {
    // Every stored message has one recipient device online: it must have arrived, once.
    let received = 0; let holes = 0; let duplicates = 0;
    for (const conn of conns) {
      received += conn.received;
      const gap = (conn.inboxMax ?? conn.firstJoinedSeq) - conn.firstJoinedSeq - (conn.inboxSeen ?? 0);
      if (gap > 0) holes += gap; else duplicates -= gap;
    }
    return { audited: conns.length, notJoined, missing: holes, extra: duplicates, reportedGapSeqs, sampledMissing: 0, sampledDuplicates: 0, stored: storedTotal, received, unanswered: pendingPms.size };
  }
  return { audited, notJoined, missing, extra, reportedGapSeqs, sampledMissing, sampledDuplicates, ...(config.trackAnswers ? { ackedMissingByStep: Array.from(ackedMissingByStep, (n) => n ?? 0) } : {}) };
}

// ---- commands ------------------------------------------------------------------------------------

function snapshot() {
  const cpu = process.cpuUsage();
  return {
    ...counters,
    totalMessages,
    open: conns.filter((conn) => conn.joined).length,
    cpuUs: cpu.user + cpu.system,
    rssBytes: process.memoryUsage.rss(),
  };
}

const handlers = {
  init: (message) => { config = message.config; return { ev: 'ready' }; },
  connect: async (message) => ({ ev: 'connected', ...(await connectAll(message.timeoutMs)) }),
  'measure-start': (message) => {
    counters = freshCounters();
    histogram = createHistogram();
    ackHistogram = createHistogram();
    latencyFromUs = message.fromUs;
    latencyToUs = message.toUs;
    return { ev: 'measure-started', ...snapshot() };
  },
  'measure-end': () => ({ ev: 'measured', ...snapshot() }),
  total: () => ({ ev: 'total', totalMessages }),
  /** Latencies of the messages scheduled in the window, including those that arrived after it ended. */
  latency: () => ({
    ev: 'latency', totalMessages, histogram: serialize(histogram), sampledMessages: counters.sampledMessages,
    ...(config.mode !== 'room' ? { ackHistogram: serialize(ackHistogram) } : {}),
  }),
  send: async (message) => {
    // A new step: sends of the last one still unanswered were reported as such by `answers`.
    stepIndex++;
    if (config.trackAnswers) answers = new SendAnswers(message.answerDeadlineMs * 1000);
    return { ev: 'sent', ...(await sendAtRate(message.rate, message.durationMs, message.textBytes)) };
  },
  /** How this step's room sends were answered; asked after a grace time longer than the deadline, so a send still pending was never answered in time. */
  answers: () => ({ ev: 'answers', ...answers.report() }),
  audit: (message) => ({ ev: 'audited', ...audit(message.finalSeqs) }),
  storm: async (message) => ({ ev: 'stormed', ...(await storm(message.windowMs, message.timeoutMs)) }),
  close: async () => {
    for (const conn of conns) conn.ws?.close();
    return { ev: 'closed' };
  },
};

process.on('message', (message) => {
  Promise.resolve()
    .then(() => handlers[message.cmd](message))
    .then((reply) => process.send({ id: message.id, ...reply }))
    .catch((error) => process.send({ id: message.id, ev: 'failed', error: String(error?.stack ?? error) }));
});
// The harness going away ends this process too.
process.on('disconnect', () => process.exit(0));
// A normal exit on SIGTERM, so that a --cpu-prof profile is written.
process.on('SIGTERM', () => process.exit(0));
