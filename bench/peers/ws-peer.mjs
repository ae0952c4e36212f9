/**
 * Peer: a plain `ws` server with the hot-room protocol and nothing more. Each message gets a seq
 * and is broadcast at once (no batching): encoded once, framed once, and the same bytes written to
 * every member's socket. It speaks Roomcast's msgpack frames (welcome, join → joined, send → ack +
 * messages with one message) so the same load client drives both.
 *
 * BENCH_PEER_PORT (0: any free port); prints `listening PORT`. GET /seq?room=R answers a room's last seq.
 */
import { createServer } from 'node:http';
import { Sender, WebSocketServer, WebSocket } from 'ws';
import { encode, decode } from '../lib/msgpackr.mjs';

const SUBPROTOCOL = 'roomcast.v1.msgpack';
/** @type {Map<string, { seq: number, members: Set<WebSocket> }>} */
const rooms = new Map();
let nextUid = 0;

function roomOf(name) {
  let room = rooms.get(name);
  if (!room) rooms.set(name, (room = { seq: 0, members: new Set() }));
  return room;
}

/** One WebSocket frame for every member: ws's own framing, done once per message. */
function frameOnce(payload) {
  return Buffer.concat(Sender.frame(payload, { fin: true, rsv1: false, opcode: 2, mask: false, readOnly: false }));
}

const http = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://peer');
  if (url.pathname === '/seq') { res.end(String(rooms.get(url.searchParams.get('room') ?? '')?.seq ?? 0)); return; }
  res.statusCode = 404;
  res.end();
});
const wss = new WebSocketServer({
  server: http,
  path: '/ws',
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
});

wss.on('connection', (ws) => {
  const uid = `u${nextUid++}`;
  const joined = new Set();
  ws.send(encode({ t: 'welcome', session: uid, uid, role: 'viewer', heartbeatMs: 30000, protocol: 1, limits: {} }));
  ws.on('message', (data) => {
    let frame;
    try { frame = decode(data); } catch { ws.close(1007, 'bad frame'); return; }
    if (frame.t === 'join') {
      const room = roomOf(frame.room);
      room.members.add(ws);
      joined.add(frame.room);
      ws.send(encode({ t: 'joined', room: frame.room, seq: room.seq, msgs: [], viewers: room.members.size }));
    } else if (frame.t === 'send' && joined.has(frame.room)) {
      const room = roomOf(frame.room);
      const seq = ++room.seq;
      const message = { seq, uid, kind: 'chat', prio: 0, text: frame.text, ts: Date.now(), cid: frame.id };
      ws.send(encode({ t: 'ack', id: frame.id, room: frame.room, seq }));
      const bytes = frameOnce(encode({ t: 'messages', room: frame.room, msgs: [message] }));
      for (const member of room.members) if (member.readyState === WebSocket.OPEN) member._socket.write(bytes);
    }
  });
  ws.on('close', () => { for (const name of joined) rooms.get(name)?.members.delete(ws); });
  ws.on('error', () => ws.terminate());
});

http.listen(Number(process.env.BENCH_PEER_PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${http.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
