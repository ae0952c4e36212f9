/**
 * The bench's native load client (bench/native/loadclient.c) as a sender, against a scripted
 * server: how it accounts for room sends' answers must be what bench/lib/send-answers.mjs (the
 * reference) gives for the same answers, and its private- and group-chat audits must see every
 * message once. Against a scripted Socket.IO server it must speak the Socket.IO peer's subset.
 */
import type { IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { NativeHandle, nativeClient, type NativeConfig, type NativeReply } from '../../bench/lib/native-client.mjs';
import { ProcessGroup } from '../../bench/lib/processes.mjs';
import { SendAnswers, sumAnswers, type AnswerReport } from '../../bench/lib/send-answers.mjs';
import { decodeMsgpack, encodeMsgpack } from '../../src/shared/codec/codec.js';

type Frame = Record<string, unknown>;
/** What the server does with room send n: by n mod 5. */
const SCRIPT = ['ack', 'overloaded', 'muted', 'ack-lost', 'silent'] as const;
const SENDS = 20;
const TEXT_BYTES = 300; // past 255: the text needs msgpack's str16
const ROOM = 'r';

const group = new ProcessGroup();
const servers: WebSocketServer[] = [];
afterAll(async () => {
  await group.stopAll();
  for (const server of servers) server.close();
});

/** A server on a free port that answers what `onFrame` says; the token's subject names the user. */
async function scriptedServer(onFrame: (ws: WebSocket, uid: string, frame: Frame) => void, onOpen: (ws: WebSocket, uid: string) => void): Promise<number> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => 'roomcast.v1.msgpack' });
  servers.push(server);
  server.on('connection', (ws: WebSocket, request: IncomingMessage) => {
    const token = new URL(request.url ?? '', 'http://x').searchParams.get('token') ?? '';
    const uid = (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { sub: string }).sub;
    ws.send(encodeMsgpack({ t: 'welcome', session: uid, uid, role: 'viewer', heartbeatMs: 30000, protocol: 1, limits: {} }));
    onOpen(ws, uid);
    ws.on('message', (data: Buffer) => onFrame(ws, uid, decodeMsgpack(data) as Frame));
  });
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

function client(name: string, port: number, fields: Partial<NativeConfig>): NativeHandle {
  return new NativeHandle(group, name, {
    protocol: 'roomcast', host: '127.0.0.1', port, secret: 'bench-native-client-test', startIndex: 0, count: 2,
    rooms: { prefix: ROOM, count: 1 }, sampled: [], trackSeqs: false, trackAnswers: false, connectConcurrency: 10,
    perAddress: 25000, uidPrefix: 's', mode: 'room', ...fields,
  });
}

/** Asks until `done` holds (the answers are in flight), or fails after `timeoutMs`. */
async function askUntil(handle: NativeHandle, cmd: string, done: (reply: NativeReply) => boolean, fields: Record<string, unknown> = {}, timeoutMs = 5000): Promise<NativeReply> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reply = await handle.request(cmd, fields);
    if (done(reply) || Date.now() > deadline) return reply;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const idNumber = (id: unknown): number => Number(String(id).split('-').pop());

describe.skipIf(!nativeClient().binary)('native load client', () => {
  it('sends room messages on schedule and sorts their answers as SendAnswers does', async () => {
    let roomSeq = 0;
    const members: WebSocket[] = [];
    const texts: string[] = [];
    const port = await scriptedServer((ws, uid, frame) => {
      if (frame.t === 'join') {
        members.push(ws);
        ws.send(encodeMsgpack({ t: 'joined', room: ROOM, seq: roomSeq, msgs: [] }));
        return;
      }
      if (frame.t !== 'send') return;
      texts[idNumber(frame.id)] = String(frame.text);
      const outcome = SCRIPT[idNumber(frame.id) % SCRIPT.length];
      if (outcome === 'ack' || outcome === 'ack-lost') {
        const seq = ++roomSeq;
        ws.send(encodeMsgpack({ t: 'ack', id: frame.id, room: ROOM, seq }));
        const message = { t: 'messages', room: ROOM, msgs: [{ seq, uid, kind: 'chat', prio: 0, text: frame.text, ts: Date.now() }] };
        if (outcome === 'ack') for (const member of members) member.send(encodeMsgpack(message));
      } else if (outcome === 'overloaded' || outcome === 'muted') {
        ws.send(encodeMsgpack({ t: 'error', code: outcome, id: frame.id, ref: 'send', retryAfterMs: 100 }));
      }
    }, () => undefined);
    const sender = client('native-test-sender', port, { trackAnswers: true });
    await sender.request('init');
    expect(await sender.request('connect', { timeoutMs: 5000 })).toMatchObject({ joined: 2, failed: 0 });

    const sent = await sender.request('send', { rate: 1000, durationMs: SENDS, textBytes: TEXT_BYTES, answerDeadlineMs: 1000 });
    expect(sent).toMatchObject({ ev: 'sent', sent: SENDS });
    const answered = SENDS - SENDS / SCRIPT.length; // all but the silent ones
    const report = await askUntil(sender, 'answers', (r) => (r.sends as number) - (r.neverAnswered as number) === answered) as unknown as AnswerReport;

    // The reference, given the same answers.
    const reference = new SendAnswers(1000 * 1000);
    for (let n = 0; n < SENDS; n++) reference.sent(`s${n % 2}-${n}`, 0);
    for (let n = 0; n < SENDS; n++) {
      const outcome = SCRIPT[n % SCRIPT.length]!;
      if (outcome !== 'silent') reference.answered(`s${n % 2}-${n}`, outcome.startsWith('ack') ? null : outcome, 1000);
    }
    const { histogram: _, ...expected } = reference.report();
    expect(report).toMatchObject(expected);
    expect(sumAnswers([report], 1000).answerTime.count).toBe(answered);

    // Message n carries its scheduled time (t0 + n ms) as stampOf writes it, padded with x.
    for (const text of texts) expect(text).toMatch(/^\d{15}\|x+$/);
    expect(texts.map((text) => text.length)).toEqual(Array(SENDS).fill(TEXT_BYTES));
    const stamps = texts.map((text) => Number(text.slice(0, 15)));
    for (const [n, stamp] of stamps.entries()) expect(Math.abs(stamp - stamps[0]! - n * 1000)).toBeLessThanOrEqual(1);

    // The acked seqs never delivered are missing from both senders' streams, and acked but missing once.
    const lost = SENDS / SCRIPT.length;
    expect(await sender.request('audit', { finalSeqs: { [ROOM]: roomSeq } })).toMatchObject({ missing: 2 * lost, extra: 0, ackedMissingByStep: [lost] });
    await sender.request('close');
  });

  it('drives private chat: ready at the login push, every message stored, pushed and acknowledged', async () => {
    const inboxSeq = new Map<string, number>();
    const sockets = new Map<string, WebSocket>();
    const acked = new Map<string, number>();
    const pushed = new Map<string, number>();
    const next = (uid: string): number => { inboxSeq.set(uid, (inboxSeq.get(uid) ?? 0) + 1); return inboxSeq.get(uid)!; };
    const port = await scriptedServer((ws, uid, frame) => {
      if (frame.t === 'inbox_ack') { acked.set(uid, frame.seq as number); return; }
      if (frame.t !== 'pm') return;
      const to = String(frame.to);
      const mid = `p/${uid}/${to}/${frame.id}`;
      ws.send(encodeMsgpack({ t: 'sent', id: frame.id, mid, seq: next(uid), ts: Date.now(), to }));
      const seq = next(to);
      pushed.set(to, seq);
      sockets.get(to)?.send(encodeMsgpack({ t: 'inbox', msgs: [{ seq, mid, from: uid, to, text: frame.text, ts: Date.now() }] }));
    }, (ws, uid) => {
      sockets.set(uid, ws);
      ws.send(encodeMsgpack({ t: 'inbox', cursor: 0, lastSeq: 0, msgs: [] }));
    });
    const users = client('native-test-pm', port, { uidPrefix: 'u', mode: 'pm', rooms: { prefix: 'none', count: 1 } });
    await users.request('init');
    expect(await users.request('connect', { timeoutMs: 5000 })).toMatchObject({ joined: 2, failed: 0 });
    expect(await users.request('send', { rate: 1000, durationMs: SENDS, textBytes: 48 })).toMatchObject({ sent: SENDS });

    const audit = await askUntil(users, 'audit', (a) => a.received === SENDS && a.unanswered === 0, { finalSeqs: {} });
    expect(audit).toMatchObject({ stored: SENDS, received: SENDS, missing: 0, extra: 0, unanswered: 0, notJoined: 0 });
    // Each user acknowledged past every seq pushed to it (its own `sent` seqs may come after the last push).
    const ackedPushes = (uid: string): boolean => (acked.get(uid) ?? 0) >= pushed.get(uid)!;
    await askUntil(users, 'total', () => ackedPushes('u0') && ackedPushes('u1'));
    for (const uid of ['u0', 'u1']) {
      expect(acked.get(uid)).toBeGreaterThanOrEqual(pushed.get(uid)!);
      expect(acked.get(uid)).toBeLessThanOrEqual(inboxSeq.get(uid)!);
    }
    const latency = await users.request('latency');
    expect(sumAnswers([{ sends: 0, acked: 0, overloaded: 0, errors: {}, answeredLate: 0, neverAnswered: 0, histogram: latency.ackHistogram as string }], 1000).answerTime.count).toBe(SENDS);
    await users.request('close');
  });

  it('drives group chat: every group message stored once and pushed to the other members', async () => {
    let groupSeq = 0;
    const members = new Map<string, WebSocket>();
    const port = await scriptedServer((ws, uid, frame) => {
      if (frame.t !== 'gm') return;
      const seq = ++groupSeq;
      ws.send(encodeMsgpack({ t: 'sent', id: frame.id, mid: `g/${frame.group}/${seq}`, seq, ts: Date.now(), group: frame.group }));
      const push = encodeMsgpack({ t: 'group_msgs', group: frame.group, msgs: [{ seq, uid, text: frame.text, ts: Date.now() }] });
      for (const [member, socket] of members) if (member !== uid) socket.send(push);
    }, (ws, uid) => {
      members.set(uid, ws);
      ws.send(encodeMsgpack({ t: 'inbox', cursor: 0, lastSeq: 0, msgs: [] }));
    });
    const chat = client('native-test-gm', port, { uidPrefix: 'u', mode: 'gm', group: 'g1', count: 3, rooms: { prefix: 'none', count: 1 } });
    await chat.request('init');
    expect(await chat.request('connect', { timeoutMs: 5000 })).toMatchObject({ joined: 3, failed: 0 });
    expect(await chat.request('send', { rate: 1000, durationMs: SENDS, textBytes: 48 })).toMatchObject({ sent: SENDS });
    const audit = await askUntil(chat, 'audit', (a) => a.received === 2 * SENDS && a.unanswered === 0, { finalSeqs: {} });
    expect(audit).toMatchObject({ stored: SENDS, received: 2 * SENDS, unanswered: 0, notJoined: 0 });
    await chat.request('close');
  });

  it('speaks the Socket.IO peer subset: handshake, join, msgs counted and sampled, pings, sends', async () => {
    const FIRST_SEQ = 5;
    const LOST_SEQ = FIRST_SEQ + 4; // given a seq, sent to nobody: a hole both the count and the sampled seqs see
    let roomSeq = FIRST_SEQ;
    const members: WebSocket[] = [];
    const upgrades: Array<{ url: string | undefined; protocol: string | undefined }> = [];
    const sendFrames: string[] = [];
    let pongs = 0;
    let connects = 0;
    // Two servers sharing one room, as two peer nodes behind the Redis adapter do.
    const onConnection = (ws: WebSocket, request: IncomingMessage): void => {
      upgrades.push({ url: request.url, protocol: request.headers['sec-websocket-protocol'] });
      ws.send(`0${JSON.stringify({ sid: `s${upgrades.length}`, upgrades: [], pingInterval: 25000, pingTimeout: 20000, maxPayload: 1000000 })}`); // engine.io open
      ws.on('message', (data: Buffer) => {
        const packet = data.toString();
        if (packet === '3') { pongs++; return; }
        if (packet === '40') { connects++; ws.send(`40${JSON.stringify({ sid: `n${connects}` })}`); return; }
        if (!packet.startsWith('42')) return;
        const [event, body] = JSON.parse(packet.slice(2)) as [string, unknown];
        if (event === 'join') {
          members.push(ws);
          ws.send(`42${JSON.stringify(['joined', { room: body, seq: roomSeq }])}`);
          ws.send('2'); // an engine.io ping, as the server sends every pingInterval
        } else if (event === 'send') {
          sendFrames.push(packet);
          const seq = ++roomSeq;
          const msg = `42${JSON.stringify(['msg', { seq, uid: 'sid', kind: 'chat', prio: 0, text: (body as { text: string }).text, ts: Date.now() }])}`;
          if (seq !== LOST_SEQ) for (const member of members) member.send(msg);
        }
      });
    };
    const ports: number[] = [];
    for (let i = 0; i < 2; i++) {
      const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
      servers.push(server);
      server.on('connection', onConnection);
      await once(server, 'listening');
      ports.push((server.address() as { port: number }).port);
    }
    const sio = client('native-test-socketio', ports[0]!, { protocol: 'socketio', count: 3, sampled: [1], uidPrefix: 'v', ports });
    await sio.request('init');
    expect(await sio.request('connect', { timeoutMs: 5000 })).toMatchObject({ joined: 3, failed: 0 });
    // Connection i went to ports[i % 2], on the engine.io path, without a token or a subprotocol.
    expect(upgrades).toHaveLength(3);
    for (const upgrade of upgrades) expect(upgrade).toEqual({ url: '/socket.io/?EIO=4&transport=websocket', protocol: undefined });
    expect(servers.slice(-2).map((server) => server.clients.size)).toEqual([2, 1]);
    await askUntil(sio, 'total', () => pongs === 3);
    expect(pongs).toBe(3);

    await sio.request('measure-start', { fromUs: 0, toUs: 1e15 });
    expect(await sio.request('send', { rate: 1000, durationMs: SENDS, textBytes: 48 })).toMatchObject({ sent: SENDS });
    const delivered = 3 * (SENDS - 1);
    await askUntil(sio, 'total', (t) => t.totalMessages === delivered);
    expect(await sio.request('measure-end')).toMatchObject({ sent: SENDS, frames: delivered, messages: delivered, sampledMessages: SENDS - 1 });
    // Each send is `42["send",{room,text}]`, its text the scheduled time padded with x.
    expect(sendFrames).toHaveLength(SENDS);
    for (const frame of sendFrames) expect(frame).toMatch(/^42\["send",\{"room":"r","text":"\d{15}\|x{32}"\}\]$/);
    // The counting connections see the lost seq as a missing message, the sampled one as a seq hole.
    expect(await sio.request('audit', { finalSeqs: { [ROOM]: roomSeq } })).toMatchObject({ audited: 3, missing: 3, extra: 0, sampledMissing: 1, sampledDuplicates: 0 });
    const latency = await sio.request('latency');
    expect(latency).toMatchObject({ totalMessages: delivered, sampledMessages: SENDS - 1 });
    const timed = sumAnswers([{ sends: 0, acked: 0, overloaded: 0, errors: {}, answeredLate: 0, neverAnswered: 0, histogram: latency.histogram as string }], 1000).answerTime;
    expect(timed.count).toBe(SENDS - 1);
    await sio.request('close');
  });
});
