/**
 * Peer: Socket.IO 4.8 with the hot-room protocol, written as a Socket.IO user would: `join` puts
 * the socket in the room, `send` gives the message a seq and `io.to(room).emit('msg', ...)`
 * broadcasts it at once. With BENCH_PEER_REDIS_URL several nodes share rooms through the official
 * Redis adapter, and the seq is a Redis counter.
 *
 * BENCH_PEER_PORT (0: any free port); prints `listening PORT`. GET /seq?room=R answers a room's last seq.
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import Redis from 'ioredis';

const redisUrl = process.env.BENCH_PEER_REDIS_URL;
const pub = redisUrl ? new Redis(redisUrl) : null;
const sub = pub ? pub.duplicate() : null;
const localSeqs = new Map();

async function nextSeq(room) {
  if (pub) return pub.incr(`seq:${room}`);
  const seq = (localSeqs.get(room) ?? 0) + 1;
  localSeqs.set(room, seq);
  return seq;
}

async function lastSeq(room) {
  if (pub) return Number((await pub.get(`seq:${room}`)) ?? 0);
  return localSeqs.get(room) ?? 0;
}

const http = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://peer');
  if (url.pathname === '/seq') { lastSeq(url.searchParams.get('room') ?? '').then((seq) => res.end(String(seq))); return; }
  if (!url.pathname.startsWith('/socket.io')) { res.statusCode = 404; res.end(); }
});
const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
if (pub && sub) io.adapter(createAdapter(pub, sub));

io.on('connection', (socket) => {
  socket.on('join', async (room) => {
    await socket.join(room);
    socket.emit('joined', { room, seq: await lastSeq(room) });
  });
  socket.on('send', async ({ room, text }) => {
    if (!socket.rooms.has(room)) return;
    const seq = await nextSeq(room);
    io.to(room).emit('msg', { seq, uid: socket.id, kind: 'chat', prio: 0, text, ts: Date.now() });
  });
});

http.listen(Number(process.env.BENCH_PEER_PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${http.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
