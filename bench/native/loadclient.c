/*
 * Roomcast's native load client: many WebSocket connections from one single-threaded epoll loop,
 * so that a frame received costs the load core little beyond the kernel's own recv (bench/README.md,
 * "Its cost"), instead of a JS callback and a Buffer per frame as in a Node process.
 *
 * One process holds its share of the viewers or of the senders. It opens them from 127.0.0.2,
 * 127.0.0.3, ... (bind before connect, so one address's ephemeral ports are never the limit),
 * upgrades them to WebSocket with the msgpack subprotocol and a token from the tokens file, joins
 * each to its room (again after `retryAfterMs` when the join is answered `overloaded`), and reads:
 *   - most connections count the messages of each `messages` frame from the msgpack array header
 *     of `msgs` and skip the rest of the frame's bytes without keeping them;
 *   - sampled connections (every Nth, chosen by the harness) decode every message: its seq (audit:
 *     missing and duplicate seqs) and the scheduled send time at the start of its text (latency);
 *   - with --track-seqs every connection decodes seqs (the reconnect storm needs exact audits);
 *   - senders (--track-answers 1) decode every message of their room too: each acked seq must
 *     arrive in the sending connection's own stream (its uid, --uid-prefix + index).
 * On `send` it writes room messages (`send`) at a scheduled rate, round-robin over its joined
 * connections, and times each answer (`ack` or `error`). With --mode pm the connections are users
 * in pairs (i talks to i ^ 1): no join, the login `inbox` push makes a connection ready, `send`
 * writes private messages (`pm`), their `sent` answers are timed, and live `inbox` pushes are
 * decoded (inbox seqs, latency) and acknowledged with one `inbox_ack` per connection per read.
 * With --mode gm the connections are members of one group (--group): ready at the login push as in
 * pm, `send` writes group messages (`gm`), their `sent` answers are timed, and every `group_msgs`
 * push is counted and timed.
 * It answers WebSocket pings, and for the storm drops every connection at a random moment within a
 * window and rejoins it with lastSeq.
 * With --socketio 1 it speaks the Socket.IO peer's subset instead (engine.io v4 over the WebSocket
 * transport, one JSON text packet per frame; onSocketIoFrame in bench/lib/load-worker.mjs is the
 * reference): upgrade on /socket.io/?EIO=4&transport=websocket (no token, no subprotocol), `40`
 * after the engine.io open packet, `42["join",room]` once connected, `42["joined",{room,seq}]` joins;
 * each `42["msg",{...}]` frame is one message, counted from its first bytes, its seq and stamp
 * parsed only on sampled connections; engine.io pings (`2`) are answered `3`; senders write
 * `42["send",{room,text}]`, which the peer does not answer. With --ports P1,P2 connection i goes to
 * port P(i mod 2) (peer nodes joined by the Redis adapter).
 *
 * The harness talks to it over stdin / stdout, one line each way per command (see bench/README.md
 * and bench/lib/native-client.mjs):
 *   connect TIMEOUT_MS               open and join every connection → {"ev":"connected",...}
 *   send RATE DURATION_MS TEXT_BYTES DEADLINE_MS
 *                                    a new step: message n due at t0 + n / RATE, its text the
 *                                    scheduled time (stampOf in bench/lib/clock.mjs) padded with
 *                                    `x` to TEXT_BYTES → {"ev":"sent","sent":N,"maxLagMs":X} once
 *                                    the step's sends are all out (other commands meanwhile)
 *   answers                          how this step's room sends were answered (SendAnswers in
 *                                    bench/lib/send-answers.mjs) → {"ev":"answers",...}
 *   measure-start FROM_US TO_US      reset the step counters; latency counts messages scheduled in
 *                                    [FROM_US, TO_US) → {"ev":"measure-started",...}
 *   measure-end                      → {"ev":"measured",...} (the step counters)
 *   total                            → {"ev":"total","totalMessages":N}
 *   latency                          → the latency histograms as [valueUs, count] pairs: from the
 *                                    scheduled send time, and from the server's `ts`; in pm and gm
 *                                    modes also scheduled send → `sent` (stored)
 *   storm WINDOW_MS TIMEOUT_MS       drop and rejoin every connection → {"ev":"stormed",...}
 *   audit N SEQ0 ... SEQ(N-1)        the rooms' final seqs, by room number → {"ev":"audited",...}
 *                                    (senders add ackedMissingByStep; pm mode audits inbox seqs,
 *                                    gm mode reports stored and received group messages)
 *   record PATH FIRST COUNT          from now on, the connections with global index in
 *                                    [FIRST, FIRST + COUNT) append each `messages` frame they
 *                                    receive to PATH: u64 arrival µs (CLOCK_MONOTONIC), u32 payload
 *                                    length, the payload, little endian → {"ev":"recording",...}
 *   record-stop                      → {"ev":"recorded","frames":N,"bytes":N}
 *   close                            close everything and exit
 * Times are CLOCK_MONOTONIC microseconds, the clock Node's process.hrtime reads, so the harness,
 * the senders and this process share it.
 *
 * Only libc: no msgpack or WebSocket library. Build: cc -O2 -o loadclient loadclient.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ---- settings and state ------------------------------------------------------------------------ */

/* One read takes at most this much: large enough for a whole batch frame of many messages. */
#define READ_BUFFER_BYTES (1 << 20)
/* Bytes of a frame's payload the peek needs to find `t` and the `msgs` array header. */
#define PEEK_BYTES 96
/*
 * The tail of a counted frame that has not arrived yet is discarded in the kernel (MSG_TRUNC, no
 * copy) when it is at least this long; shorter tails are read with the next frames in one call
 * (a syscall costs more than copying a few KiB).
 */
#define TRUNC_MIN_BYTES 65536
/*
 * Receive buffer per socket, fixed: a locked size turns off the kernel's per-read autotuning
 * (tcp_rcv_space_adjust), a few percent of each read; the memory is used only by queued bytes.
 */
#define RCVBUF_BYTES (256 * 1024)
/* Events taken per epoll_wait: one call serves many frames when the load is high. */
#define MAX_EVENTS 1024
/* Server ports a process may spread its connections over (--ports): the Socket.IO peer's nodes. */
#define MAX_PORTS 16

enum { S_IDLE, S_CONNECTING, S_UPGRADING, S_WELCOME, S_JOINING, S_JOINED, S_CLOSED };
/*
 * room: join a room and send room messages; pm: users in pairs sending each other private messages;
 * gm: members of one group (--group), the senders sending it group messages.
 */
enum { MODE_ROOM, MODE_PM, MODE_GM };

/*
 * A sending connection's acked seqs against its own messages received in its room, one state per
 * room seq after its join (AckedSeqs in bench/lib/send-answers.mjs is the reference: the ack and the
 * message may arrive in either order). 0: neither yet; 1..ACKED_MAX: acked in step state-1, not seen;
 * SEEN: seen, not acked (yet); DONE: both.
 */
#define SEQ_SEEN 0xffff
#define SEQ_DONE 0xfffe
#define ACKED_MAX 0xfffd
typedef struct { uint16_t *state; uint32_t cap; } AckedSeqs;

typedef struct Conn {
  int fd;
  uint32_t index;        /* global connection index (uid suffix, source address, sampling) */
  uint32_t room;         /* room number: index % room_count */
  uint8_t state;
  uint8_t sampled;       /* decode every message: latency and seqs */
  uint8_t pending;       /* an open (connect or storm reconnect) is in flight, not yet settled */
  uint8_t ever_joined;
  uint8_t handshaken, welcomed;
  uint8_t recording;     /* append every `messages` frame it receives to the recording file */
  uint8_t decodes;       /* every message decoded: sampled, or a sender looking for its own */
  uint8_t inbox_ack_due; /* pm: inbox pushes read, acknowledged once the read is done */
  int64_t inbox_max;     /* pm: the highest inbox seq seen (pushes and `sent` answers) */
  uint64_t inbox_seen;   /* pm: inbox seqs seen */
  AckedSeqs acked;
  int64_t first_joined_seq, last_seq;
  uint64_t received, missing, duplicates, reported_gap;
  double t_start, t_open, t_welcome, deadline, dropped_at;
  double join_retry_at;  /* a join refused `overloaded` is sent again then (0: none due) */
  uint8_t *buf;          /* bytes of an incomplete frame (or HTTP response), owned */
  uint32_t len, cap;
  uint64_t skip;         /* payload bytes still to discard of a frame already counted */
  uint8_t *out;          /* client bytes the socket did not take yet (rare: frames are tiny) */
  uint32_t out_len;
} Conn;

static struct {
  const char *host;
  int port;
  const char *path;      /* request path up to the token: /ws?token= */
  const char *protocol;  /* Sec-WebSocket-Protocol ("": none) */
  const char *tokens_file;
  uint32_t start_index, count;
  const char *room_prefix;
  uint32_t room_count;
  uint32_t per_address;
  uint32_t concurrency;
  int track_seqs;
  const char *uid_prefix; /* connection i is user <uid_prefix><i> (the tokens' subjects) */
  int mode;
  int track_answers;      /* Roomcast room senders: time each answer, find each acked seq */
  const char *group;      /* gm: the group */
  int socketio;           /* speak Socket.IO (engine.io v4) to the Socket.IO peer */
  uint16_t ports[MAX_PORTS]; /* --ports: connection i goes to ports[i % n_ports] (0: --port for all) */
  uint32_t n_ports;
  uint32_t poll_us;       /* --poll-us: a receiver waits at least this long between two epoll_waits (0: none) */
} cfg = { "127.0.0.1", 0, "/ws?token=", "roomcast.v1.msgpack", NULL, 0, 0, "hot", 1, 25000, 200, 0, "v", MODE_ROOM, 0, "", 0, { 0 }, 0, 0 };

static Conn *conns;
static char **tokens;
static int ep;
static uint8_t *rbuf;

/* Step counters (reset by measure-start) and the never-reset total. */
typedef struct { char key[40]; uint64_t n; } Count;
#define MAX_KEYS 32
static struct {
  uint64_t frames, messages, sampled_messages, gap_seqs;
  uint64_t sent, acked;    /* sends written; `ack` / `sent` answers */
  uint64_t reads, wakeups; /* read calls and epoll_wait returns: the syscalls behind each frame */
  Count errors[MAX_KEYS], closes[MAX_KEYS];
  int n_errors, n_closes;
} ctr;
static uint64_t total_messages;
/* The recording (`record`): the payloads of the recording connections' `messages` frames. */
static FILE *rec_file;
static uint64_t rec_frames, rec_bytes;
static double latency_from = 0, latency_to = 1e300;

/* What the current long command (connect or storm) is doing. */
static struct {
  int active;           /* 0: none, 1: connect, 2: storm */
  double timeout_ms;
  uint32_t next;        /* connect: next connection to open */
  uint32_t inflight;
  uint32_t settled;
  /* connect phases, ms per joined connection */
  float *handshake, *welcome, *join;
  uint32_t n_phase;
  Count failures[MAX_KEYS];
  int n_failures;
  /* storm */
  double started;
  uint32_t *order;      /* connections by drop time */
  double *drop_at;
  uint32_t dropped;
  float *recover_ms, *rejoin_ms;
  uint32_t recovered;
} job;

/* ---- small helpers ------------------------------------------------------------------------------ */

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "loadclient: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q && n) die("out of memory (%zu bytes)", n);
  return q;
}

/* Counts `key` in a small table of distinct strings (error codes, close codes, failure reasons). */
static void count_key(Count *table, int *n, const char *key, size_t key_len) {
  if (key_len >= sizeof(table[0].key)) key_len = sizeof(table[0].key) - 1;
  for (int i = 0; i < *n; i++) {
    if (strlen(table[i].key) == key_len && memcmp(table[i].key, key, key_len) == 0) { table[i].n++; return; }
  }
  if (*n == MAX_KEYS) { table[MAX_KEYS - 1].n++; strcpy(table[MAX_KEYS - 1].key, "other"); return; } /* the table is full: lump the rest */
  memcpy(table[*n].key, key, key_len);
  table[*n].key[key_len] = 0;
  table[*n].n = 1;
  (*n)++;
}

/* xorshift64*: masks and storm times need to be unpredictable to nobody, just spread. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dULL;
}

/* ---- latency histogram ------------------------------------------------------------------------- */
/*
 * HdrHistogram's layout with 3 significant digits: values below 2048 µs exactly, larger ones in
 * 2048 linear sub-buckets per power of two. The harness rebuilds an hdr-histogram-js histogram
 * from the non-empty [value, count] pairs, so figures match the Node workers' exactly.
 */
#define H_SUB 2048
#define H_SHIFTS 22 /* up to 2^32 µs: over an hour, clamped like the Node workers */
typedef uint32_t Hist[H_SHIFTS][H_SUB];
/*
 * Scheduled send → arrival; the server's `ts` (when it accepted the message) → arrival; and in pm
 * mode scheduled send → its `sent` answer (the message is stored).
 */
static Hist hist, hist_ts, hist_stored;

static void hist_reset(void) { memset(hist, 0, sizeof hist); memset(hist_ts, 0, sizeof hist_ts); memset(hist_stored, 0, sizeof hist_stored); }

static void hist_record(Hist h, double us) {
  uint64_t v = us <= 0 ? 0 : (uint64_t)(us + 0.5);
  if (v > 3600000000ULL) v = 3600000000ULL;
  int shift = 0;
  while ((v >> shift) >= H_SUB) shift++;
  h[shift][v >> shift]++;
}

static void outf(const char *fmt, ...);

static void out_hist(const char *name, Hist h) {
  outf("\"%s\":[", name);
  int first = 1;
  for (int s = 0; s < H_SHIFTS; s++) for (int i = 0; i < H_SUB; i++) if (h[s][i]) {
    outf("%s[%llu,%u]", first ? "" : ",", (unsigned long long)i << s, h[s][i]);
    first = 0;
  }
  outf("]");
}

/* CLOCK_REALTIME in µs: the clock of the server's `ts` (ms since the epoch), on the same machine. */
static double wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* ---- output ------------------------------------------------------------------------------------ */

static char *out_buf;
static size_t out_len, out_cap;

static void outf(const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out_buf + out_len, out_cap - out_len, fmt, ap);
    va_end(ap);
    if ((size_t)n < out_cap - out_len) { out_len += n; return; }
    out_cap = out_cap * 2 + n + 4096;
    out_buf = xrealloc(out_buf, out_cap);
  }
}

/* Writes the reply line to stdout (blocking: the harness reads it at once). */
static void out_flush(void) {
  outf("\n");
  size_t done = 0;
  while (done < out_len) {
    ssize_t n = write(1, out_buf + done, out_len - done);
    if (n < 0) { if (errno == EINTR || errno == EAGAIN) continue; exit(0); }
    done += n;
  }
  out_len = 0;
}

static void out_counts(const char *name, Count *table, int n) {
  outf("\"%s\":{", name);
  for (int i = 0; i < n; i++) outf("%s\"%s\":%llu", i ? "," : "", table[i].key, (unsigned long long)table[i].n);
  outf("}");
}

static void out_floats(const char *name, float *values, uint32_t n) {
  outf("\"%s\":[", name);
  for (uint32_t i = 0; i < n; i++) outf("%s%.2f", i ? "," : "", values[i]);
  outf("]");
}

/* ---- msgpack reading ----------------------------------------------------------------------------- */
/* Just what the server's frames use: maps, arrays, strings, numbers, booleans, nil. */

typedef struct { const uint8_t *p, *end; } Mp;

static uint64_t be(const uint8_t *p, int n) { uint64_t v = 0; for (int i = 0; i < n; i++) v = v << 8 | p[i]; return v; }

static int mp_len(Mp *m, uint8_t fix_mask, uint8_t fix_tag, int fix_bits, uint8_t t16, uint8_t t32, uint32_t *n) {
  if (m->p >= m->end) return 0;
  uint8_t h = *m->p++;
  if ((h & fix_mask) == fix_tag) { *n = h & ((1u << fix_bits) - 1); return 1; }
  int bytes = h == t16 ? 2 : h == t32 ? 4 : 0;
  if (!bytes || m->end - m->p < bytes) return 0;
  *n = (uint32_t)be(m->p, bytes);
  m->p += bytes;
  return 1;
}
static int mp_map(Mp *m, uint32_t *n) { return mp_len(m, 0xf0, 0x80, 4, 0xde, 0xdf, n); }
static int mp_array(Mp *m, uint32_t *n) { return mp_len(m, 0xf0, 0x90, 4, 0xdc, 0xdd, n); }

static int mp_str(Mp *m, const uint8_t **s, uint32_t *n) {
  if (m->p >= m->end) return 0;
  uint8_t h = *m->p;
  if ((h & 0xe0) == 0xa0) { *n = h & 0x1f; m->p++; }
  else if (h == 0xd9 && m->end - m->p >= 2) { *n = m->p[1]; m->p += 2; }
  else if (h == 0xda && m->end - m->p >= 3) { *n = (uint32_t)be(m->p + 1, 2); m->p += 3; }
  else if (h == 0xdb && m->end - m->p >= 5) { *n = (uint32_t)be(m->p + 1, 4); m->p += 5; }
  else return 0;
  if ((uint64_t)(m->end - m->p) < *n) return 0;
  *s = m->p;
  m->p += *n;
  return 1;
}

/* Any msgpack number as a double: `ts` may come as float64 (docs/protocol.md, section 3). */
static int mp_num(Mp *m, double *v) {
  if (m->p >= m->end) return 0;
  uint8_t h = *m->p++;
  if (h <= 0x7f) { *v = h; return 1; }
  if (h >= 0xe0) { *v = (int8_t)h; return 1; }
  int n = 0;
  switch (h) {
    case 0xcc: case 0xd0: n = 1; break;
    case 0xcd: case 0xd1: n = 2; break;
    case 0xce: case 0xd2: case 0xca: n = 4; break;
    case 0xcf: case 0xd3: case 0xcb: n = 8; break;
    default: return 0;
  }
  if (m->end - m->p < n) return 0;
  uint64_t raw = be(m->p, n);
  m->p += n;
  if (h == 0xca) { uint32_t r = (uint32_t)raw; float f; memcpy(&f, &r, 4); *v = f; }
  else if (h == 0xcb) { double d; memcpy(&d, &raw, 8); *v = d; }
  else if (h >= 0xd0) { int64_t s = (int64_t)(raw << (64 - 8 * n)) >> (64 - 8 * n); *v = (double)s; }
  else *v = (double)raw;
  return 1;
}

static int mp_skip(Mp *m) {
  if (m->p >= m->end) return 0;
  uint8_t h = *m->p;
  uint32_t n;
  const uint8_t *s;
  double d;
  if (h <= 0x7f || h >= 0xe0 || h == 0xc0 || h == 0xc2 || h == 0xc3) { m->p++; return 1; }
  if ((h & 0xe0) == 0xa0 || h == 0xd9 || h == 0xda || h == 0xdb) return mp_str(m, &s, &n);
  if ((h & 0xf0) == 0x90 || h == 0xdc || h == 0xdd) { if (!mp_array(m, &n)) return 0; while (n--) if (!mp_skip(m)) return 0; return 1; }
  if ((h & 0xf0) == 0x80 || h == 0xde || h == 0xdf) { if (!mp_map(m, &n)) return 0; while (n--) if (!mp_skip(m) || !mp_skip(m)) return 0; return 1; }
  if (h == 0xc4 || h == 0xc5 || h == 0xc6) {
    int b = h == 0xc4 ? 1 : h == 0xc5 ? 2 : 4;
    if (m->end - m->p < 1 + b) return 0;
    n = (uint32_t)be(m->p + 1, b);
    m->p += 1 + b;
    if ((uint64_t)(m->end - m->p) < n) return 0;
    m->p += n;
    return 1;
  }
  return mp_num(m, &d);
}

static int key_is(const uint8_t *k, uint32_t n, const char *name) { return strlen(name) == n && memcmp(k, name, n) == 0; }

/* A number, or any other value skipped (*v unchanged): `to` is a seq in `gap`, a uid in `sent`. */
static int mp_num_or_skip(Mp *m, double *v) {
  Mp at = *m;
  if (mp_num(m, v)) return 1;
  *m = at;
  return mp_skip(m);
}

/*
 * The cheap path (msgpack-peek.mjs in C): a `messages` frame is {t, room, msgs, ...} with `t`
 * first; read `t` and skip to the `msgs` array header. Returns the message count, -1 for another
 * frame type, -2 when it cannot tell from these bytes (the caller then decodes the whole frame).
 */
static int64_t peek_messages(const uint8_t *p, size_t n) {
  Mp m = { p, p + n };
  uint32_t size, len, count;
  const uint8_t *k;
  int typed = 0;
  if (!mp_map(&m, &size)) return -2;
  for (uint32_t i = 0; i < size; i++) {
    if (!mp_str(&m, &k, &len)) return -2;
    if (len == 1 && k[0] == 't') {
      const uint8_t *v;
      uint32_t vn;
      if (!mp_str(&m, &v, &vn)) return -2;
      if (!key_is(v, vn, "messages")) return -1;
      typed = 1;
    } else if (key_is(k, len, "msgs")) {
      if (!typed || !mp_array(&m, &count)) return -2;
      return count;
    } else if (!mp_skip(&m)) {
      return -2;
    }
  }
  return -2;
}

/* ---- client frames ------------------------------------------------------------------------------- */

static void conn_fail(Conn *c, const char *reason);
static void conn_drop(Conn *c);

static void ep_mod(Conn *c, uint32_t events) {
  struct epoll_event ev = { .events = events | EPOLLET, .data.u32 = c->index - cfg.start_index };
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes bytes, keeping what the socket refuses until it is writable again. */
static void conn_write(Conn *c, const uint8_t *p, size_t n) {
  if (c->out_len == 0) {
    ssize_t w = write(c->fd, p, n);
    if (w == (ssize_t)n) return;
    if (w < 0) { if (errno != EAGAIN) { conn_fail(c, "write failed"); return; } w = 0; }
    p += w;
    n -= w;
  }
  c->out = xrealloc(c->out, c->out_len + n);
  memcpy(c->out + c->out_len, p, n);
  c->out_len += n;
  ep_mod(c, EPOLLIN | EPOLLOUT);
}

/* A masked client frame: RFC 6455 requires every client frame to be masked. */
static void send_frame(Conn *c, int opcode, const uint8_t *payload, size_t n) {
  static uint8_t *frame;
  static size_t frame_cap;
  if (frame_cap < n + 14) { frame_cap = n + 14; frame = xrealloc(frame, frame_cap); }
  size_t h = 0;
  frame[h++] = 0x80 | opcode;
  if (n < 126) frame[h++] = 0x80 | n;
  else if (n < 65536) { frame[h++] = 0x80 | 126; frame[h++] = n >> 8; frame[h++] = n & 0xff; }
  else { frame[h++] = 0x80 | 127; for (int i = 7; i >= 0; i--) frame[h++] = (uint8_t)((uint64_t)n >> (8 * i)); }
  uint32_t mask = (uint32_t)rng();
  memcpy(frame + h, &mask, 4);
  const uint8_t *k = frame + h;
  h += 4;
  for (size_t i = 0; i < n; i++) frame[h + i] = payload[i] ^ k[i & 3];
  conn_write(c, frame, h + n);
}

/* A msgpack string header (str8 / str16 / str32) and its bytes; o has room for n + 5. */
static size_t mp_put_str(uint8_t *o, const char *s, size_t n) {
  size_t h;
  if (n < 256) { o[0] = 0xd9; o[1] = (uint8_t)n; h = 2; }
  else if (n < 65536) { o[0] = 0xda; o[1] = (uint8_t)(n >> 8); o[2] = (uint8_t)n; h = 3; }
  else { o[0] = 0xdb; for (int i = 0; i < 4; i++) o[1 + i] = (uint8_t)(n >> (24 - 8 * i)); h = 5; }
  memcpy(o + h, s, n);
  return n + h;
}

/* A msgpack uint64. */
static size_t mp_put_u64(uint8_t *o, uint64_t v) {
  o[0] = 0xcf;
  for (int i = 0; i < 8; i++) o[1 + i] = (uint8_t)(v >> (56 - 8 * i));
  return 9;
}

/* The connection's room: `<prefix><room number>`, or the prefix itself for one room. */
static int room_name(const Conn *c, char *room, size_t cap) {
  int n = cfg.room_count == 1 ? snprintf(room, cap, "%s", cfg.room_prefix) : snprintf(room, cap, "%s%u", cfg.room_prefix, c->room);
  return n < (int)cap ? n : (int)cap - 1;
}

/* {t:'join', room, lastSeq?} in msgpack; a rejoin carries the highest seq this connection has. */
static void send_join(Conn *c) {
  uint8_t b[160];
  char room[96];
  int rn = room_name(c, room, sizeof room);
  if (cfg.socketio) {
    /* Room names are the harness's own (letters and digits): no JSON escaping needed. */
    int jn = snprintf((char *)b, sizeof b, "42[\"join\",\"%.*s\"]", rn, room);
    send_frame(c, 1, b, jn < (int)sizeof b ? (size_t)jn : sizeof b - 1);
    return;
  }
  size_t n = 0;
  b[n++] = c->ever_joined ? 0x83 : 0x82;
  n += mp_put_str(b + n, "t", 1);
  n += mp_put_str(b + n, "join", 4);
  n += mp_put_str(b + n, "room", 4);
  n += mp_put_str(b + n, room, rn);
  if (c->ever_joined) {
    n += mp_put_str(b + n, "lastSeq", 7);
    n += mp_put_u64(b + n, c->last_seq < 0 ? 0 : (uint64_t)c->last_seq);
  }
  send_frame(c, 2, b, n);
}

/* {t:'inbox_ack', seq}: the highest inbox seq this connection has seen, once per read (as the SDK acks once per event-loop turn). */
static void send_inbox_ack(Conn *c) {
  uint8_t b[32];
  size_t n = 0;
  c->inbox_ack_due = 0;
  b[n++] = 0x82;
  n += mp_put_str(b + n, "t", 1);
  n += mp_put_str(b + n, "inbox_ack", 9);
  n += mp_put_str(b + n, "seq", 3);
  n += mp_put_u64(b + n, c->inbox_max < 0 ? 0 : (uint64_t)c->inbox_max);
  send_frame(c, 2, b, n);
}

/* ---- seqs and latency ---------------------------------------------------------------------------- */

static void apply_seq(Conn *c, int64_t seq) {
  if (seq <= c->last_seq) { c->duplicates++; return; }
  if (seq > c->last_seq + 1) c->missing += seq - c->last_seq - 1;
  c->last_seq = seq;
}

/*
 * A pm user's inbox seq counts the messages it received and the ones it sent (each gets a seq in
 * both inboxes), and pushes and `sent` answers may arrive in either order: holes are counted at the
 * audit as the highest seq seen minus the seqs seen (noteInboxSeq in load-worker.mjs).
 */
static void note_inbox_seq(Conn *c, int64_t seq) {
  c->inbox_seen++;
  if (seq > c->inbox_max) c->inbox_max = seq;
}

/* The fields of one message the bench reads; -1 (NULL) where absent. */
typedef struct { double seq, scheduled, ts; const uint8_t *uid; uint32_t uid_n; } MsgFields;

/* The scheduled send time (µs) that starts a text (`<µs>|xxxx`, stampOf in clock.mjs); -1 without one. */
static double stamp_of_text(const uint8_t *s, uint32_t n) {
  double v = 0;
  uint32_t j = 0;
  while (j < n && s[j] >= '0' && s[j] <= '9') v = v * 10 + (s[j++] - '0');
  return j > 0 && j < n && s[j] == '|' ? v : -1;
}

/* Reads one message map: its seq always; with `timed` its stamp and `ts`; with `uid` its sender. */
static int read_msg(Mp *m, MsgFields *f, int timed, int uid) {
  uint32_t fields, kl;
  const uint8_t *k;
  *f = (MsgFields){ -1, -1, -1, NULL, 0 };
  if (!mp_map(m, &fields)) return 0;
  for (uint32_t i = 0; i < fields; i++) {
    if (!mp_str(m, &k, &kl)) return 0;
    if (key_is(k, kl, "seq")) { if (!mp_num(m, &f->seq)) return 0; }
    else if (timed && key_is(k, kl, "ts")) { if (!mp_num(m, &f->ts)) return 0; }
    else if (timed && key_is(k, kl, "text")) {
      const uint8_t *s;
      uint32_t sl;
      if (!mp_str(m, &s, &sl)) return 0;
      f->scheduled = stamp_of_text(s, sl);
    } else if (uid && key_is(k, kl, "uid")) { if (!mp_str(m, &f->uid, &f->uid_n)) return 0; }
    else if (!mp_skip(m)) return 0;
  }
  return 1;
}

/* A message scheduled in the measured window: latency from its stamp and from the server's `ts`. */
static void time_msg(const MsgFields *f, double now, double wall) {
  if (f->scheduled < latency_from || f->scheduled >= latency_to) return;
  hist_record(hist, now - f->scheduled);
  if (f->ts >= 0) hist_record(hist_ts, wall - f->ts * 1000);
  ctr.sampled_messages++;
}

static void acked_seqs_seen(Conn *c, int64_t seq);

/* Whether a message's uid is this connection's user: `<uid_prefix><index>`. */
static int own_uid(const Conn *c, const uint8_t *s, uint32_t n) {
  char uid[64];
  int k = snprintf(uid, sizeof uid, "%s%u", cfg.uid_prefix, c->index);
  return (uint32_t)k == n && memcmp(uid, s, n) == 0;
}

/*
 * Walks an array of room messages: checks seqs, on sampled connections records the latency from
 * the scheduled send time that starts each text, and on senders notes their own messages' seqs.
 * Returns the count.
 */
static int64_t read_msgs(Conn *c, Mp m, uint32_t count, int timed) {
  double now = timed ? now_us() : 0, wall = timed ? wall_us() : 0;
  for (uint32_t i = 0; i < count; i++) {
    MsgFields f;
    if (!read_msg(&m, &f, timed, cfg.track_answers)) return i;
    if (f.seq >= 0) apply_seq(c, (int64_t)f.seq);
    if (timed) time_msg(&f, now, wall);
    if (f.uid && f.seq >= 0 && own_uid(c, f.uid, f.uid_n)) acked_seqs_seen(c, (int64_t)f.seq);
  }
  return count;
}

/*
 * The messages of an `inbox` (pm) or `group_msgs` (gm) push: every one is timed (they are decoded
 * anyway), and with `inbox_seqs` its inbox seq noted.
 */
static void read_chat_msgs(Conn *c, Mp m, uint32_t count, int inbox_seqs) {
  double now = now_us(), wall = wall_us();
  for (uint32_t i = 0; i < count; i++) {
    MsgFields f;
    if (!read_msg(&m, &f, 1, 0)) return;
    if (inbox_seqs && f.seq >= 0) note_inbox_seq(c, (int64_t)f.seq);
    time_msg(&f, now, wall);
  }
}

static void count_messages(Conn *c, uint64_t n) {
  ctr.frames++;
  ctr.messages += n;
  total_messages += n;
  c->received += n;
}

/* ---- acked seqs (senders) ------------------------------------------------------------------------ */

/* The state of room seq `seq` on a sender, the table grown to hold it; NULL for seqs before its join. */
static uint16_t *acked_slot(Conn *c, int64_t seq) {
  int64_t i = seq - c->first_joined_seq - 1;
  if (i < 0 || i >= (1 << 30)) return NULL;
  if ((uint64_t)i >= c->acked.cap) {
    uint32_t cap = c->acked.cap ? c->acked.cap : 1024;
    while (cap <= (uint64_t)i) cap *= 2;
    c->acked.state = xrealloc(c->acked.state, (size_t)cap * sizeof(uint16_t));
    memset(c->acked.state + c->acked.cap, 0, (size_t)(cap - c->acked.cap) * sizeof(uint16_t));
    c->acked.cap = cap;
  }
  return &c->acked.state[i];
}

/* The gateway acked `seq` for a send of step `step` (AckedSeqs#acked). */
static void acked_seqs_acked(Conn *c, int64_t seq, int step) {
  uint16_t *s = acked_slot(c, seq);
  if (!s) return;
  *s = *s == SEQ_SEEN ? SEQ_DONE : (uint16_t)(step + 1 > ACKED_MAX ? ACKED_MAX : step + 1);
}

/* The sender received its own message `seq` in its room (AckedSeqs#seen). */
static void acked_seqs_seen(Conn *c, int64_t seq) {
  uint16_t *s = acked_slot(c, seq);
  if (!s) return;
  if (*s >= 1 && *s <= ACKED_MAX) *s = SEQ_DONE;
  else if (*s == 0) *s = SEQ_SEEN;
}

/* Adds the sender's acked seqs never received to counts[step] (AckedSeqs#addMissing). */
static void acked_seqs_missing(const Conn *c, uint64_t *counts, int steps) {
  for (uint32_t i = 0; i < c->acked.cap; i++) {
    uint16_t s = c->acked.state[i];
    if (s >= 1 && s <= ACKED_MAX && s - 1 < steps) counts[s - 1]++;
  }
}

/* ---- sending ------------------------------------------------------------------------------------- */

/* Every send of the run by its id number n (ids are `<uid>-<n>`, n counted per process). */
typedef struct { double scheduled, written; uint8_t answered; } SendRec;
static SendRec *sends;
static uint64_t n_sends, sends_cap;
/* pm, gm: messages answered neither `sent` nor an error, and the `sent` answers, since the start. */
static uint64_t chat_unanswered, stored_total;

/* The current `send` command: one step's schedule. */
static struct {
  int active;
  double start_us, interval_us, max_lag_us;
  uint64_t total, done;
  uint32_t *order, n_order; /* the connections joined when the step began, taken in turn */
  uint32_t text_bytes;
} sched;

/*
 * How the current step's room sends were answered. SendAnswers in bench/lib/send-answers.mjs is
 * the reference (and has the unit test): keep the two alike.
 */
static struct {
  int step;             /* counted from 0 by `send` commands */
  uint64_t first;       /* id number of the step's first send: earlier ids are ignored */
  double deadline_us;   /* an answer later than this after its send was late (0: no deadline) */
  uint64_t sends, answered, acked, overloaded, answered_late;
  Count errors[MAX_KEYS];
  int n_errors;
  Hist hist;            /* the frame's write → its answer */
} answers = { .step = -1 };

/* The id number n of `<uid>-<n>`; 0 when the id is not one of ours. */
static int id_number(const uint8_t *id, uint32_t n, uint64_t *out) {
  uint32_t dash = n;
  while (dash > 0 && id[dash - 1] != '-') dash--;
  if (dash == 0 || dash == n) return 0;
  uint64_t v = 0;
  for (uint32_t i = dash; i < n; i++) { if (id[i] < '0' || id[i] > '9') return 0; v = v * 10 + (id[i] - '0'); }
  *out = v;
  return 1;
}

/* The send of this id, marked answered; NULL for an id not ours or answered already. */
static SendRec *take_answered(const uint8_t *id, uint32_t n, uint64_t first) {
  uint64_t i;
  if (!id || !id_number(id, n, &i) || i < first || i >= n_sends || sends[i].answered) return NULL;
  sends[i].answered = 1;
  return &sends[i];
}

/* A room send's `ack` (code NULL) or `error` (SendAnswers#answered); ids of earlier steps are ignored. */
static void room_send_answered(const uint8_t *id, uint32_t id_n, const uint8_t *code, uint32_t code_n) {
  SendRec *r = take_answered(id, id_n, answers.first);
  if (!r) return;
  double took = now_us() - r->written;
  hist_record(answers.hist, took);
  answers.answered++;
  if (answers.deadline_us > 0 && took > answers.deadline_us) answers.answered_late++;
  if (!code) answers.acked++;
  else if (key_is(code, code_n, "overloaded")) answers.overloaded++;
  else count_key(answers.errors, &answers.n_errors, (const char *)code, code_n);
}

/* A private or group message's `sent` or error: its scheduled time, or -1 when the id is not a pending one. */
static double chat_answered(const uint8_t *id, uint32_t id_n) {
  SendRec *r = take_answered(id, id_n, 0);
  if (!r) return -1;
  chat_unanswered--;
  return r->scheduled;
}

/* One message, due at `scheduled`: {t:'send', room, id, text}, {t:'pm', to, id, text} or {t:'gm', group, id, text}. */
static void send_one(Conn *c, double scheduled) {
  static uint8_t *b;
  static char *text;
  static size_t cap;
  size_t text_n = sched.text_bytes > 16 ? sched.text_bytes : 16;
  if (cap < text_n + 1) { cap = text_n + 1; text = xrealloc(text, cap); b = xrealloc(b, cap + 512); }
  /* Math.round of a positive time, 15 digits: stampOf in bench/lib/clock.mjs. */
  int stamp_n = snprintf(text, cap, "%015llu|", (unsigned long long)(scheduled + 0.5));
  size_t tn = (size_t)stamp_n < sched.text_bytes ? sched.text_bytes : (size_t)stamp_n;
  memset(text + stamp_n, 'x', tn - stamp_n);
  if (cfg.socketio) {
    /* The peer answers no sends (as the ws peer): no id, nothing to time. */
    char room[96];
    int rn = room_name(c, room, sizeof room);
    int jn = snprintf((char *)b, cap + 512, "42[\"send\",{\"room\":\"%.*s\",\"text\":\"%.*s\"}]", rn, room, (int)tn, text);
    ctr.sent++;
    if (c->fd >= 0 && c->state == S_JOINED) send_frame(c, 1, b, (size_t)jn);
    return;
  }
  if (n_sends == sends_cap) { sends_cap = sends_cap ? sends_cap * 2 : 65536; sends = xrealloc(sends, sends_cap * sizeof(SendRec)); }
  uint64_t id_n = n_sends++;
  char id[96], where[96];
  int idl = snprintf(id, sizeof id, "%s%u-%llu", cfg.uid_prefix, c->index, (unsigned long long)id_n);
  static const char *const type[] = { "send", "pm", "gm" }, *const to[] = { "room", "to", "group" };
  int wl = cfg.mode == MODE_PM ? snprintf(where, sizeof where, "%s%u", cfg.uid_prefix, c->index ^ 1)
         : cfg.mode == MODE_GM ? snprintf(where, sizeof where, "%s", cfg.group) : room_name(c, where, sizeof where);
  if (wl >= (int)sizeof where) wl = sizeof where - 1;
  size_t n = 0;
  b[n++] = 0x84;
  n += mp_put_str(b + n, "t", 1);
  n += mp_put_str(b + n, type[cfg.mode], strlen(type[cfg.mode]));
  n += mp_put_str(b + n, to[cfg.mode], strlen(to[cfg.mode]));
  n += mp_put_str(b + n, where, wl);
  n += mp_put_str(b + n, "id", 2);
  n += mp_put_str(b + n, id, idl);
  n += mp_put_str(b + n, "text", 4);
  n += mp_put_str(b + n, text, tn);
  sends[id_n] = (SendRec){ scheduled, now_us(), 0 };
  ctr.sent++;
  answers.sends++;
  if (cfg.mode != MODE_ROOM) chat_unanswered++;
  /* A connection lost since the step began: the send counts, and shows as never answered. */
  if (c->fd >= 0 && c->state == S_JOINED) send_frame(c, 2, b, n);
}

static void out_sent(uint64_t sent, double max_lag_us) {
  outf("{\"ev\":\"sent\",\"sent\":%llu,\"maxLagMs\":%.3f}", (unsigned long long)sent, max_lag_us / 1000);
  out_flush();
}

/* Writes the messages due by now (message n at start + n × interval); answers `sent` after the last. */
static void send_due(void) {
  if (!sched.active) return;
  double now = now_us();
  double elapsed = now - sched.start_us; /* ≥ 0: truncation is the floor */
  uint64_t due = elapsed < 0 ? 0 : (uint64_t)(elapsed / sched.interval_us) + 1;
  if (due > sched.total) due = sched.total;
  for (; sched.done < due; sched.done++) {
    double scheduled = sched.start_us + sched.done * sched.interval_us;
    if (now - scheduled > sched.max_lag_us) sched.max_lag_us = now - scheduled;
    send_one(&conns[sched.order[sched.done % sched.n_order]], scheduled);
  }
  if (sched.done >= sched.total) {
    sched.active = 0;
    out_sent(sched.done, sched.max_lag_us);
  }
}

/*
 * Messages due at least every millisecond: the process then wakes only when they are due and takes
 * what the sockets have at that moment (epoll_wait without waiting), instead of waking for each
 * answer and room frame besides each send (the wake-ups were most of a send's CPU). What its
 * sockets bring is then seen up to one interval (≤ 1 ms) late.
 */
#define TICK_MAX_INTERVAL_US 1000.0

static int send_ticking(void) { return sched.active && sched.interval_us <= TICK_MAX_INTERVAL_US; }

/* Sleeps until `at_us` (CLOCK_MONOTONIC, the clock of now_us). */
static void sleep_until(double at_us) {
  if (at_us <= now_us()) return;
  uint64_t ns = (uint64_t)(at_us * 1000);
  struct timespec at = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR) {}
}

/* Sleeps until the next message is due. */
static void sleep_until_due(void) { sleep_until(sched.start_us + sched.done * sched.interval_us); }

/*
 * --poll-us: a receiver that woke takes what its sockets have, then waits out the interval before it
 * looks again, so that one wake-up serves the frames of the whole interval, as a remote client's NIC
 * coalesces interrupts. Arrivals are then seen up to the interval late. Not while connecting or in a
 * storm, where each socket's progress is timed.
 */
static int receiver_pacing(void) { return cfg.poll_us > 0 && !sched.active && !job.active; }

/* ms until the next message is due (rounded up: never a busy loop), -1 when none is. */
static int send_wait_ms(void) {
  if (!sched.active) return -1;
  double wait_us = sched.start_us + sched.done * sched.interval_us - now_us();
  if (wait_us <= 0) return 0;
  int ms = (int)(wait_us / 1000);
  return ms * 1000.0 < wait_us ? ms + 1 : ms;
}

/*
 * A new step (`send`): `rate` messages per second for `duration_ms` over the connections joined
 * now, in turn. Message n carries its scheduled time, so a late send shows up as latency (no
 * coordinated omission). The step's answers start afresh.
 */
static void start_send(double rate, double duration_ms, uint32_t text_bytes, double deadline_ms) {
  answers.step++;
  answers.first = n_sends;
  answers.deadline_us = deadline_ms * 1000;
  answers.sends = answers.answered = answers.acked = answers.overloaded = answers.answered_late = 0;
  answers.n_errors = 0;
  memset(answers.hist, 0, sizeof answers.hist);
  sched.order = xrealloc(sched.order, sizeof(uint32_t) * (cfg.count ? cfg.count : 1));
  sched.n_order = 0;
  for (uint32_t i = 0; i < cfg.count; i++) if (conns[i].state == S_JOINED) sched.order[sched.n_order++] = i;
  if (sched.n_order == 0 || !(rate > 0)) { outf("{\"ev\":\"sent\",\"sent\":0}"); out_flush(); return; }
  sched.start_us = now_us();
  sched.interval_us = 1e6 / rate;
  sched.total = duration_ms > 0 ? (uint64_t)(duration_ms / 1000 * rate) : 0;
  sched.text_bytes = text_bytes;
  sched.done = 0;
  sched.max_lag_us = 0;
  sched.active = 1;
  send_due();
}

static void out_answers(void) {
  outf("{\"ev\":\"answers\",\"sends\":%llu,\"acked\":%llu,\"overloaded\":%llu,",
       (unsigned long long)answers.sends, (unsigned long long)answers.acked, (unsigned long long)answers.overloaded);
  out_counts("errors", answers.errors, answers.n_errors);
  outf(",\"answeredLate\":%llu,\"neverAnswered\":%llu,", (unsigned long long)answers.answered_late, (unsigned long long)(answers.sends - answers.answered));
  out_hist("values", answers.hist);
  outf("}");
  out_flush();
}

/* ---- server frames ------------------------------------------------------------------------------- */

/* One frame into the recording, as received: the limit peer replays these bytes (limit-peer.mjs). */
static void record_frame(const uint8_t *p, size_t n) {
  if (!rec_file) return;
  uint64_t at = (uint64_t)now_us();
  uint32_t len = (uint32_t)n;
  if (fwrite(&at, 8, 1, rec_file) != 1 || fwrite(&len, 4, 1, rec_file) != 1 || fwrite(p, 1, n, rec_file) != n) die("recording: write failed");
  rec_frames++;
  rec_bytes += n;
}

static void settle(Conn *c, const char *failure);

/*
 * An `inbox` push. In pm and gm modes the login push (it has `cursor`) makes the connection ready
 * (no join); its messages, and every live push's, are counted, timed and acknowledged after the read.
 */
static void on_inbox(Conn *c, int has_cursor, double last_seq, Mp msgs, uint32_t n_msgs) {
  if (cfg.mode != MODE_ROOM && has_cursor && !c->ever_joined) {
    c->last_seq = c->first_joined_seq = c->inbox_max = (int64_t)last_seq;
    c->state = S_JOINED;
    c->ever_joined = 1;
    settle(c, NULL);
  }
  if (n_msgs == 0) return;
  count_messages(c, n_msgs);
  read_chat_msgs(c, msgs, n_msgs, 1);
  c->inbox_ack_due = 1;
}

/* A private or group message stored: counted, timed from its scheduled send; a private one's inbox seq noted. */
static void on_sent(Conn *c, const uint8_t *id, uint32_t id_n, double seq, int duplicate) {
  ctr.acked++;
  stored_total++;
  if (!duplicate && cfg.mode == MODE_PM) note_inbox_seq(c, (int64_t)seq);
  double scheduled = chat_answered(id, id_n);
  if (scheduled >= 0 && scheduled >= latency_from && scheduled < latency_to) hist_record(hist_stored, now_us() - scheduled);
}

static void on_joined(Conn *c, double seq, Mp msgs, uint32_t n_msgs, int has_gap, double gap_from, double gap_to) {
  if (!c->ever_joined) {
    c->first_joined_seq = (int64_t)seq;
    c->last_seq = (int64_t)seq;
  } else {
    /* A rejoin with lastSeq: the missed messages come in `msgs`, a lost range in `gap`. */
    if (has_gap) {
      uint64_t g = (uint64_t)(gap_to - gap_from + 1);
      c->reported_gap += g;
      ctr.gap_seqs += g;
      if ((int64_t)gap_to > c->last_seq) c->last_seq = (int64_t)gap_to;
    }
    c->received += n_msgs;
    read_msgs(c, msgs, n_msgs, 0);
    if ((int64_t)seq > c->last_seq) { c->missing += (int64_t)seq - c->last_seq; c->last_seq = (int64_t)seq; }
  }
  c->state = S_JOINED;
  c->ever_joined = 1;
  settle(c, NULL);
}

/* A whole binary or text frame, decoded (control frames, sampled connections, anything unusual). */
static void on_frame(Conn *c, const uint8_t *p, size_t n) {
  Mp m = { p, p + n };
  uint32_t size, kl, sl, n_msgs = 0;
  const uint8_t *k, *s, *type = NULL, *code = NULL, *ref = NULL, *id = NULL;
  uint32_t type_n = 0, code_n = 0, ref_n = 0, id_n = 0;
  double seq = 0, from = 0, to = 0, gap_from = 0, gap_to = 0, retry_after_ms = -1, cursor = -1, last_seq = -1;
  int has_msgs = 0, has_gap = 0, duplicate = 0;
  Mp msgs = { 0 };
  if (!mp_map(&m, &size)) return; /* not msgpack (or not ours): ignored, as clients must */
  for (uint32_t i = 0; i < size; i++) {
    if (!mp_str(&m, &k, &kl)) return;
    if (key_is(k, kl, "t")) { if (!mp_str(&m, &type, &type_n)) return; }
    else if (key_is(k, kl, "code")) { if (!mp_str(&m, &code, &code_n)) return; }
    else if (key_is(k, kl, "ref")) { if (!mp_str(&m, &ref, &ref_n)) return; }
    else if (key_is(k, kl, "seq")) { if (!mp_num(&m, &seq)) return; }
    else if (key_is(k, kl, "from")) { if (!mp_num(&m, &from)) return; }
    else if (key_is(k, kl, "to")) { if (!mp_num_or_skip(&m, &to)) return; }
    else if (key_is(k, kl, "retryAfterMs")) { if (!mp_num(&m, &retry_after_ms)) return; }
    else if (key_is(k, kl, "id")) { if (!mp_str(&m, &id, &id_n)) return; }
    else if (key_is(k, kl, "cursor")) { if (!mp_num(&m, &cursor)) return; }
    else if (key_is(k, kl, "lastSeq")) { if (!mp_num(&m, &last_seq)) return; }
    else if (key_is(k, kl, "duplicate")) { if (m.p >= m.end) return; duplicate = *m.p++ == 0xc3; }
    else if (key_is(k, kl, "msgs")) {
      if (!mp_array(&m, &n_msgs)) return;
      msgs = m;
      has_msgs = 1;
      for (uint32_t j = 0; j < n_msgs; j++) if (!mp_skip(&m)) return;
    } else if (key_is(k, kl, "gap")) {
      uint32_t gs;
      if (!mp_map(&m, &gs)) return;
      for (uint32_t j = 0; j < gs; j++) {
        double v;
        if (!mp_str(&m, &s, &sl)) return;
        if (key_is(s, sl, "from") && mp_num(&m, &v)) gap_from = v;
        else if (key_is(s, sl, "to") && mp_num(&m, &v)) gap_to = v;
        else if (!mp_skip(&m)) return;
      }
      has_gap = 1;
    } else if (!mp_skip(&m)) return;
  }
  if (!type) return;
  if (key_is(type, type_n, "messages") && has_msgs) {
    if (c->state != S_JOINED) return;
    if (c->recording) record_frame(p, n);
    count_messages(c, n_msgs);
    if (c->decodes || cfg.track_seqs) read_msgs(c, msgs, n_msgs, c->sampled);
  } else if (key_is(type, type_n, "welcome")) {
    c->welcomed = 1;
    c->t_welcome = now_us();
    c->state = S_JOINING;
    if (cfg.mode == MODE_ROOM) send_join(c); /* pm, gm: ready at the login inbox push */
  } else if (key_is(type, type_n, "inbox")) {
    on_inbox(c, cursor >= 0, last_seq >= 0 ? last_seq : cursor, msgs, has_msgs ? n_msgs : 0);
  } else if (key_is(type, type_n, "group_msgs") && has_msgs) {
    count_messages(c, n_msgs);
    read_chat_msgs(c, msgs, n_msgs, 0);
  } else if (key_is(type, type_n, "ack")) {
    ctr.acked++;
    if (cfg.track_answers) {
      room_send_answered(id, id_n, NULL, 0);
      acked_seqs_acked(c, (int64_t)seq, answers.step);
    }
  } else if (key_is(type, type_n, "sent")) {
    on_sent(c, id, id_n, seq, duplicate);
  } else if (key_is(type, type_n, "joined")) {
    on_joined(c, seq, msgs, has_msgs ? n_msgs : 0, has_gap, gap_from, gap_to);
  } else if (key_is(type, type_n, "gap")) {
    uint64_t g = (uint64_t)(to - from + 1);
    ctr.gap_seqs += g;
    c->reported_gap += g;
    if ((int64_t)to > c->last_seq) c->last_seq = (int64_t)to;
  } else if (key_is(type, type_n, "error")) {
    count_key(ctr.errors, &ctr.n_errors, code ? (const char *)code : "?", code ? code_n : 1);
    /* Refused sends are counted as answered, never sent again (as the Node workers do). */
    if (id && cfg.mode != MODE_ROOM) chat_answered(id, id_n);
    if (id && cfg.track_answers && ref && key_is(ref, ref_n, "send"))
      room_send_answered(id, id_n, code ? code : (const uint8_t *)"?", code ? code_n : 1);
    if (ref && key_is(ref, ref_n, "join") && c->pending && code && key_is(code, code_n, "overloaded")) {
      /* As a client does: join again after retryAfterMs (the timer scan runs every 100 ms). */
      c->join_retry_at = now_us() + (retry_after_ms > 0 ? retry_after_ms : 100) * 1000;
    } else if (ref && key_is(ref, ref_n, "join") && c->pending) {
      char reason[80];
      snprintf(reason, sizeof reason, "join refused: %.*s", (int)code_n, code ? (const char *)code : "?");
      settle(c, reason);
    }
  }
  /* viewers, notice, pong, left, reconnect: nothing to count */
}

/* ---- Socket.IO frames ------------------------------------------------------------------------------ */
/*
 * Text packets as the peer's Socket.IO 4.8 writes them: JSON.stringify's output, no whitespace.
 * Only the event bodies' top-level fields are read; nothing is unescaped (the keys and the bench's
 * texts have no escapes that matter: a stamp is digits).
 */
#define SIO_MSG "42[\"msg\","
#define SIO_JOINED "42[\"joined\","
#define SIO_MSG_N (sizeof SIO_MSG - 1)
#define SIO_JOINED_N (sizeof SIO_JOINED - 1)

typedef struct { const uint8_t *p, *end; } Js;

/* A JSON string: its bytes between the quotes, escapes left as they are. */
static int js_str(Js *j, const uint8_t **s, uint32_t *n) {
  if (j->p >= j->end || *j->p != '"') return 0;
  const uint8_t *start = ++j->p;
  while (j->p < j->end && *j->p != '"') j->p += *j->p == '\\' ? 2 : 1;
  if (j->p >= j->end) return 0;
  *s = start;
  *n = (uint32_t)(j->p - start);
  j->p++;
  return 1;
}

static int js_number_char(uint8_t ch) { return (ch >= '0' && ch <= '9') || ch == '-' || ch == '+' || ch == '.' || ch == 'e' || ch == 'E'; }

/* A JSON number (strtod reads JSON's number grammar; the copy bounds it to the frame). */
static int js_num(Js *j, double *v) {
  char digits[40];
  size_t n = 0;
  while (j->p + n < j->end && n < sizeof digits - 1 && js_number_char(j->p[n])) n++;
  if (n == 0 || n == sizeof digits - 1) return 0;
  memcpy(digits, j->p, n);
  digits[n] = 0;
  char *e;
  *v = strtod(digits, &e);
  if (e != digits + n) return 0;
  j->p += n;
  return 1;
}

/* Skips one value, leaving j at the `,` or closing bracket after it. */
static int js_skip(Js *j) {
  int depth = 0;
  while (j->p < j->end) {
    uint8_t ch = *j->p;
    if (ch == '"') {
      const uint8_t *s;
      uint32_t n;
      if (!js_str(j, &s, &n)) return 0;
      if (depth == 0) return 1;
      continue;
    }
    if (ch == '{' || ch == '[') depth++;
    else if (ch == '}' || ch == ']') { if (depth == 0) return 1; if (--depth == 0) { j->p++; return 1; } }
    else if (ch == ',' && depth == 0) return 1;
    j->p++;
  }
  return 0;
}

/* An event's body `{...}`: its seq; with `timed` also the stamp that starts its text and its `ts`. */
static int sio_body(const uint8_t *p, size_t n, MsgFields *f, int timed) {
  Js j = { p, p + n };
  *f = (MsgFields){ -1, -1, -1, NULL, 0 };
  if (j.p >= j.end || *j.p++ != '{') return 0;
  while (j.p < j.end && *j.p != '}') {
    const uint8_t *k;
    uint32_t kl;
    if (!js_str(&j, &k, &kl) || j.p >= j.end || *j.p++ != ':') return 0;
    if (key_is(k, kl, "seq")) { if (!js_num(&j, &f->seq)) return 0; }
    else if (timed && key_is(k, kl, "ts")) { if (!js_num(&j, &f->ts)) return 0; }
    else if (timed && key_is(k, kl, "text")) {
      const uint8_t *s;
      uint32_t sl;
      if (!js_str(&j, &s, &sl)) return 0;
      f->scheduled = stamp_of_text(s, sl);
    } else if (!js_skip(&j)) return 0;
    if (j.p < j.end && *j.p == ',') j.p++;
  }
  return j.p < j.end;
}

/* One engine.io packet (a text frame) from the Socket.IO peer. */
static void on_sio_frame(Conn *c, const uint8_t *p, size_t n) {
  MsgFields f;
  if (c->state == S_JOINED && n > SIO_MSG_N && memcmp(p, SIO_MSG, SIO_MSG_N) == 0) {
    count_messages(c, 1);
    /* Only connections that read seqs parse the body: the others count it from its prefix. */
    if ((c->decodes || cfg.track_seqs) && sio_body(p + SIO_MSG_N, n - SIO_MSG_N, &f, c->sampled)) {
      if (f.seq >= 0) apply_seq(c, (int64_t)f.seq);
      if (c->sampled) time_msg(&f, now_us(), wall_us());
    }
    return;
  }
  if (n == 0) return;
  if (p[0] == '0') { send_frame(c, 1, (const uint8_t *)"40", 2); return; } /* engine.io open → connect to the main namespace */
  if (p[0] == '2') { send_frame(c, 1, (const uint8_t *)"3", 1); return; }  /* engine.io ping → pong, or the server closes us */
  if (p[0] != '4' || n < 2) return;
  if (p[1] == '0') {
    /* Connected: the counterpart of Roomcast's welcome in the set-up phases. */
    c->welcomed = 1;
    c->t_welcome = now_us();
    c->state = S_JOINING;
    send_join(c);
  } else if (p[1] == '4') {
    conn_fail(c, "Socket.IO connect refused");
  } else if (c->state != S_JOINED && n > SIO_JOINED_N && memcmp(p, SIO_JOINED, SIO_JOINED_N) == 0 &&
             sio_body(p + SIO_JOINED_N, n - SIO_JOINED_N, &f, 0) && f.seq >= 0) {
    on_joined(c, f.seq, (Mp){ 0 }, 0, 0, 0, 0);
  }
}

/* Parses as many WebSocket frames from p[0..n) as are there; returns the bytes consumed. */
static size_t on_ws_bytes(Conn *c, const uint8_t *p, size_t n) {
  size_t at = 0;
  while (at < n && c->state != S_CLOSED) {
    if (c->skip) {
      size_t take = n - at < c->skip ? n - at : c->skip;
      c->skip -= take;
      at += take;
      continue;
    }
    const uint8_t *h = p + at;
    size_t avail = n - at;
    if (avail < 2) break;
    int fin = h[0] & 0x80, opcode = h[0] & 0x0f;
    uint64_t len = h[1] & 0x7f;
    size_t hl = 2;
    if (h[1] & 0x80) { conn_fail(c, "masked server frame"); return n; }
    if (len == 126) { if (avail < 4) break; len = be(h + 2, 2); hl = 4; }
    else if (len == 127) { if (avail < 10) break; len = be(h + 2, 8); hl = 10; }
    if (!fin || opcode == 0) { conn_fail(c, "fragmented frame"); return n; } /* uWS and ws never fragment */
    size_t have = avail - hl;
    const uint8_t *payload = h + hl;
    if (opcode == 2 && c->state == S_JOINED && !c->decodes && !c->recording && !cfg.track_seqs && have < len) {
      /* The cheap path on a partial frame: count from its head, then discard the rest unread. */
      if (have >= PEEK_BYTES) {
        int64_t count = peek_messages(payload, have);
        if (count >= 0) {
          count_messages(c, count);
          c->skip = len - have;
          return n;
        }
      }
      break; /* wait for more of it */
    }
    if (have < len) break;
    at += hl + len;
    if ((opcode == 1 || opcode == 2) && cfg.socketio) {
      on_sio_frame(c, payload, len);
    } else if (opcode == 2 || opcode == 1) {
      if (c->state == S_JOINED && !c->decodes && !c->recording && !cfg.track_seqs) {
        int64_t count = peek_messages(payload, len);
        if (count >= 0) { count_messages(c, count); continue; }
        if (count == -1) { on_frame(c, payload, len); continue; }
      }
      on_frame(c, payload, len);
    } else if (opcode == 9) {
      send_frame(c, 10, payload, len); /* ping → pong with the same payload */
    } else if (opcode == 8) {
      char reason[64];
      unsigned code = len >= 2 ? (unsigned)be(payload, 2) : 1005;
      snprintf(reason, sizeof reason, "%u", code);
      count_key(ctr.closes, &ctr.n_closes, reason, strlen(reason));
      snprintf(reason, sizeof reason, "closed %u %s", code, !c->welcomed ? "before welcome" : "after welcome");
      conn_fail(c, reason);
      return n;
    }
  }
  return at;
}

/* The HTTP upgrade's answer: 101, then WebSocket frames (the welcome may be in the same read). */
static size_t on_http_bytes(Conn *c, const uint8_t *p, size_t n) {
  const uint8_t *end = memmem(p, n, "\r\n\r\n", 4);
  if (!end) {
    if (n > 8192) conn_fail(c, "HTTP answer too long");
    return 0;
  }
  if (n < 12 || memcmp(p + 9, "101", 3) != 0) {
    char reason[64];
    snprintf(reason, sizeof reason, "HTTP %.3s before the handshake completed", n >= 12 ? (const char *)p + 9 : "???");
    conn_fail(c, reason);
    return n;
  }
  /* Sec-WebSocket-Accept is not checked: the server is ours and this is a load generator. */
  c->handshaken = 1;
  c->t_open = now_us();
  c->state = S_WELCOME;
  size_t head = end + 4 - p;
  return head + on_ws_bytes(c, p + head, n - head);
}

static size_t on_bytes(Conn *c, const uint8_t *p, size_t n) {
  return c->state == S_UPGRADING ? on_http_bytes(c, p, n) : on_ws_bytes(c, p, n);
}

static int on_read(Conn *c, size_t kept, ssize_t r);

static void keep_pending(Conn *c, const uint8_t *p, size_t n) {
  if (c->cap < n) { c->cap = n < 256 ? 256 : n; c->buf = xrealloc(c->buf, c->cap); }
  memmove(c->buf, p, n);
  c->len = n;
}

/*
 * Readable (edge triggered): reads into the shared buffer, behind any bytes kept from the last
 * read, until a read comes back short. A short read means the socket's queue was empty at that
 * moment, and bytes arriving later raise a new edge, so the usual extra read that only returns
 * EAGAIN is saved: one read per frame, and epoll does not poll the socket again after each event
 * as it does when level triggered.
 */
static void read_all(Conn *c) {
  for (;;) {
    if (c->skip >= TRUNC_MIN_BYTES && c->state == S_JOINED) {
      /* The rest of a large frame already counted: dropped in the kernel, never copied. */
      ssize_t d = recv(c->fd, NULL, c->skip, MSG_TRUNC | MSG_DONTWAIT);
      ctr.reads++;
      if (d == 0) { count_key(ctr.closes, &ctr.n_closes, "1006", 4); conn_fail(c, "closed 1006 after the handshake"); return; }
      if (d < 0) { if (errno == EAGAIN || errno == EINTR) return; conn_fail(c, "read failed"); return; }
      c->skip -= d;
      if (c->skip) return; /* short: the rest has not arrived yet */
    }
    size_t kept = c->len;
    if (kept) memcpy(rbuf, c->buf, kept);
    size_t want = READ_BUFFER_BYTES - kept;
    ssize_t r;
    if (want == 0) r = -1, errno = ENOBUFS; /* a frame larger than the buffer: not ours */
    else r = recv(c->fd, rbuf + kept, want, MSG_DONTWAIT); /* recv, not read: skips the VFS layer */
    ctr.reads++;
    if (!on_read(c, kept, r)) return;
    if ((size_t)r < want) return; /* drained */
  }
}

/* Reads what is there; then acknowledges the inbox pushes it brought, once (pm). */
static void on_readable(Conn *c) {
  read_all(c);
  if (c->inbox_ack_due && c->state != S_CLOSED) send_inbox_ack(c);
}

/* What one read brought; returns 0 when the connection is gone or has nothing more now. */
static int on_read(Conn *c, size_t kept, ssize_t r) {
  if (r == 0) { count_key(ctr.closes, &ctr.n_closes, "1006", 4); conn_fail(c, c->handshaken ? "closed 1006 after the handshake" : "closed before the handshake completed"); return 0; }
  if (r < 0) {
    if (errno == EAGAIN || errno == EINTR) return 0;
    conn_fail(c, errno == ECONNREFUSED ? "connection refused" : errno == ENOBUFS ? "frame larger than the read buffer" : "read failed");
    return 0;
  }
  size_t total = kept + r;
  size_t used = on_bytes(c, rbuf, total);
  if (c->state == S_CLOSED) return 0;
  if (used < total) keep_pending(c, rbuf + used, total - used);
  else c->len = 0;
  /* Kept bytes of a large frame are not held on to once it is done. */
  if (c->len == 0 && c->cap > 65536) { free(c->buf); c->buf = NULL; c->cap = 0; }
  return 1;
}

/* ---- connecting ---------------------------------------------------------------------------------- */

static void conn_close_fd(Conn *c) {
  if (c->fd >= 0) { epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL); close(c->fd); }
  c->fd = -1;
  c->len = 0;
  c->skip = 0;
  c->out_len = 0;
  c->state = S_CLOSED;
}

static void conn_fail(Conn *c, const char *reason) {
  conn_close_fd(c);
  settle(c, reason);
}

/* Drops the TCP connection without a close frame, as a client whose network went away. */
static void conn_drop(Conn *c) { conn_close_fd(c); }

/* The server port of a connection: with several (--ports), spread by index. */
static int port_of(const Conn *c) { return cfg.n_ports ? cfg.ports[c->index % cfg.n_ports] : cfg.port; }

static void conn_open(Conn *c) {
  c->handshaken = c->welcomed = 0;
  c->t_start = now_us();
  c->t_open = c->t_welcome = 0;
  c->deadline = c->t_start + job.timeout_ms * 1000;
  c->join_retry_at = 0;
  c->inbox_ack_due = 0;
  c->pending = 1;
  c->len = 0;
  c->skip = 0;
  job.inflight++;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { c->fd = -1; settle(c, errno == EMFILE ? "out of file descriptors" : "socket failed"); return; }
  c->fd = fd;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int rcvbuf = RCVBUF_BYTES;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  /* Pick the port at connect time, per (source, destination): 25,000 per address fit easily. */
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  struct sockaddr_in src = { .sin_family = AF_INET };
  src.sin_addr.s_addr = htonl((127u << 24) | (2 + c->index / cfg.per_address));
  if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) { conn_fail(c, "bind failed"); return; }
  struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(port_of(c)) };
  inet_pton(AF_INET, cfg.host, &dst.sin_addr);
  if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) { conn_fail(c, "connect failed"); return; }
  c->state = S_CONNECTING;
  struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLET, .data.u32 = c->index - cfg.start_index };
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void on_connected(Conn *c) {
  int err = 0;
  socklen_t el = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
  if (err) { conn_fail(c, err == ECONNREFUSED ? "connection refused" : "connect failed"); return; }
  char req[2048];
  int n = snprintf(req, sizeof req,
    "GET %s%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "%s%s%s\r\n",
    cfg.path, tokens[c->index - cfg.start_index], cfg.host, port_of(c),
    *cfg.protocol ? "Sec-WebSocket-Protocol: " : "", cfg.protocol, *cfg.protocol ? "\r\n" : "");
  c->state = S_UPGRADING;
  ep_mod(c, EPOLLIN);
  conn_write(c, (const uint8_t *)req, n);
}

static void on_writable(Conn *c) {
  ssize_t w = write(c->fd, c->out, c->out_len);
  if (w < 0) { if (errno != EAGAIN) conn_fail(c, "write failed"); return; }
  memmove(c->out, c->out + w, c->out_len - w);
  c->out_len -= w;
  if (c->out_len == 0) ep_mod(c, EPOLLIN);
}

static void start_more(void);

/* The end of one open: joined (failure NULL) or failed. Ends the connect / storm job when all did. */
static void settle(Conn *c, const char *failure) {
  if (!c->pending) return;
  c->pending = 0;
  job.inflight--;
  job.settled++;
  double now = now_us();
  if (failure) {
    if (c->state != S_CLOSED) conn_close_fd(c);
    count_key(job.failures, &job.n_failures, failure, strlen(failure));
  } else if (job.active == 1) {
    job.handshake[job.n_phase] = (c->t_open - c->t_start) / 1000;
    job.welcome[job.n_phase] = (c->t_welcome - c->t_open) / 1000;
    job.join[job.n_phase] = (now - c->t_welcome) / 1000;
    job.n_phase++;
  } else if (job.active == 2) {
    job.recover_ms[job.recovered] = (now - job.started) / 1000;
    job.rejoin_ms[job.recovered] = (now - c->dropped_at) / 1000;
    job.recovered++;
  }
  if (job.active == 1) start_more();
}

static void start_more(void) {
  while (job.inflight < cfg.concurrency && job.next < cfg.count) conn_open(&conns[job.next++]);
}

static void finish_job_if_done(void) {
  if (job.active == 1 && job.settled == cfg.count) {
    outf("{\"ev\":\"connected\",\"joined\":%u,\"failed\":%u,", job.n_phase, cfg.count - job.n_phase);
    out_counts("failures", job.failures, job.n_failures);
    outf(",\"phases\":{");
    out_floats("handshakeMs", job.handshake, job.n_phase); outf(",");
    out_floats("welcomeMs", job.welcome, job.n_phase); outf(",");
    out_floats("joinMs", job.join, job.n_phase);
    outf("}}");
    out_flush();
    job.active = 0;
  } else if (job.active == 2 && job.dropped == cfg.count && job.settled == cfg.count) {
    outf("{\"ev\":\"stormed\",\"recovered\":%u,\"failed\":%u,", job.recovered, cfg.count - job.recovered);
    out_counts("failures", job.failures, job.n_failures);
    outf(",");
    out_floats("recoverMs", job.recover_ms, job.recovered); outf(",");
    out_floats("rejoinMs", job.rejoin_ms, job.recovered);
    outf("}");
    out_flush();
    job.active = 0;
  }
}

/* Connections whose open has outlasted its timeout fail; refused joins due again are sent; storm drops that are due happen. */
static double last_scan;
static void on_timers(void) {
  double now = now_us();
  if (job.active == 2) {
    while (job.dropped < cfg.count && job.drop_at[job.dropped] <= now) {
      Conn *c = &conns[job.order[job.dropped++]];
      c->dropped_at = now;
      conn_drop(c);
      c->state = S_IDLE;
      conn_open(c);
    }
  }
  if (job.active && now - last_scan > 100000) {
    last_scan = now;
    for (uint32_t i = 0; i < cfg.count; i++) {
      Conn *c = &conns[i];
      if (!c->pending) continue;
      if (c->deadline < now) { conn_fail(c, "timed out before joining"); continue; }
      if (c->join_retry_at > 0 && c->join_retry_at <= now && c->state == S_JOINING) { c->join_retry_at = 0; send_join(c); }
    }
  }
  finish_job_if_done();
}

static int by_drop_time(const void *a, const void *b) {
  double x = job.drop_at[*(const uint32_t *)a], y = job.drop_at[*(const uint32_t *)b];
  return x < y ? -1 : x > y;
}

static void start_storm(double window_ms, double timeout_ms) {
  job.active = 2;
  job.timeout_ms = timeout_ms;
  job.started = now_us();
  job.settled = job.dropped = job.recovered = 0;
  job.n_failures = 0;
  double *at = xrealloc(NULL, sizeof(double) * cfg.count);
  job.order = xrealloc(job.order, sizeof(uint32_t) * cfg.count);
  job.drop_at = at;
  for (uint32_t i = 0; i < cfg.count; i++) { job.order[i] = i; at[i] = job.started + (double)(rng() >> 11) / 9007199254740992.0 * window_ms * 1000; }
  qsort(job.order, cfg.count, sizeof(uint32_t), by_drop_time);
  /* drop_at sorted in the same order, so on_timers walks one array */
  double *sorted = xrealloc(NULL, sizeof(double) * cfg.count);
  for (uint32_t i = 0; i < cfg.count; i++) sorted[i] = at[job.order[i]];
  free(at);
  job.drop_at = sorted;
  job.recover_ms = xrealloc(job.recover_ms, sizeof(float) * cfg.count);
  job.rejoin_ms = xrealloc(job.rejoin_ms, sizeof(float) * cfg.count);
}

/* ---- commands ------------------------------------------------------------------------------------ */

static void out_snapshot(const char *ev) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1e6 + ru.ru_stime.tv_usec;
  long rss_pages = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) { if (fscanf(f, "%*d %ld", &rss_pages) != 1) rss_pages = 0; fclose(f); }
  uint32_t open = 0;
  for (uint32_t i = 0; i < cfg.count; i++) open += conns[i].state == S_JOINED;
  outf("{\"ev\":\"%s\",\"frames\":%llu,\"messages\":%llu,\"sampledMessages\":%llu,\"sent\":%llu,\"acked\":%llu,\"gapSeqs\":%llu,",
       ev, (unsigned long long)ctr.frames, (unsigned long long)ctr.messages, (unsigned long long)ctr.sampled_messages,
       (unsigned long long)ctr.sent, (unsigned long long)ctr.acked, (unsigned long long)ctr.gap_seqs);
  out_counts("errors", ctr.errors, ctr.n_errors); outf(",");
  out_counts("closes", ctr.closes, ctr.n_closes);
  outf(",\"reads\":%llu,\"wakeups\":%llu", (unsigned long long)ctr.reads, (unsigned long long)ctr.wakeups);
  outf(",\"totalMessages\":%llu,\"open\":%u,\"cpuUs\":%.0f,\"rssBytes\":%ld}", (unsigned long long)total_messages, open, cpu, rss_pages * sysconf(_SC_PAGESIZE));
  out_flush();
}

/* pm: every stored message has one recipient online: it must have arrived, once, without inbox-seq holes. */
static void audit_pm(void) {
  uint64_t not_joined = 0, received = 0, holes = 0, duplicates = 0, gaps = 0;
  for (uint32_t i = 0; i < cfg.count; i++) {
    Conn *c = &conns[i];
    not_joined += c->state != S_JOINED;
    received += c->received;
    gaps += c->reported_gap;
    int64_t gap = c->inbox_max - c->first_joined_seq - (int64_t)c->inbox_seen;
    if (gap > 0) holes += gap; else duplicates += -gap;
  }
  outf("{\"ev\":\"audited\",\"audited\":%u,\"notJoined\":%llu,\"missing\":%llu,\"extra\":%llu,\"reportedGapSeqs\":%llu,\"sampledMissing\":0,\"sampledDuplicates\":0,"
       "\"stored\":%llu,\"received\":%llu,\"unanswered\":%llu}",
       cfg.count, (unsigned long long)not_joined, (unsigned long long)holes, (unsigned long long)duplicates, (unsigned long long)gaps,
       (unsigned long long)stored_total, (unsigned long long)received, (unsigned long long)chat_unanswered);
  out_flush();
}

/* gm: the harness expects every stored group message at every online member but its sender's connection. */
static void audit_gm(void) {
  uint64_t not_joined = 0, received = 0;
  for (uint32_t i = 0; i < cfg.count; i++) {
    not_joined += conns[i].state != S_JOINED;
    received += conns[i].received;
  }
  outf("{\"ev\":\"audited\",\"audited\":%u,\"notJoined\":%llu,\"stored\":%llu,\"received\":%llu,\"unanswered\":%llu}",
       cfg.count, (unsigned long long)not_joined, (unsigned long long)stored_total, (unsigned long long)received, (unsigned long long)chat_unanswered);
  out_flush();
}

/* Senders: acked seqs the sending connection, a member of the room, never received, by the step of the ack. */
static void out_acked_missing(void) {
  int steps = answers.step + 1;
  uint64_t *counts = calloc(steps > 0 ? steps : 1, sizeof(uint64_t));
  if (!counts) die("out of memory");
  for (uint32_t i = 0; i < cfg.count; i++) acked_seqs_missing(&conns[i], counts, steps);
  outf(",\"ackedMissingByStep\":[");
  for (int i = 0; i < steps; i++) outf("%s%llu", i ? "," : "", (unsigned long long)counts[i]);
  outf("]");
  free(counts);
}

static void audit(char *args) {
  if (cfg.mode == MODE_PM) { audit_pm(); return; }
  if (cfg.mode == MODE_GM) { audit_gm(); return; }
  uint32_t rooms = (uint32_t)strtoul(args, &args, 10);
  int64_t *final = xrealloc(NULL, sizeof(int64_t) * (rooms ? rooms : 1));
  for (uint32_t i = 0; i < rooms; i++) final[i] = strtoll(args, &args, 10);
  uint64_t missing = 0, extra = 0, gaps = 0, audited = 0, not_joined = 0, s_missing = 0, s_dup = 0;
  for (uint32_t i = 0; i < cfg.count; i++) {
    Conn *c = &conns[i];
    if (c->state != S_JOINED) { not_joined++; continue; }
    if (c->room >= rooms || final[c->room] < 0) continue; /* no final seq for this room */
    audited++;
    gaps += c->reported_gap;
    if (c->decodes || cfg.track_seqs) {
      int64_t tail = final[c->room] > c->last_seq ? final[c->room] - c->last_seq : 0;
      missing += c->missing + tail;
      extra += c->duplicates;
      if (c->sampled) { s_missing += c->missing + tail; s_dup += c->duplicates; }
    } else {
      int64_t diff = final[c->room] - c->first_joined_seq - (int64_t)c->reported_gap - (int64_t)c->received;
      if (diff > 0) missing += diff; else extra += -diff;
    }
  }
  free(final);
  outf("{\"ev\":\"audited\",\"audited\":%llu,\"notJoined\":%llu,\"missing\":%llu,\"extra\":%llu,\"reportedGapSeqs\":%llu,\"sampledMissing\":%llu,\"sampledDuplicates\":%llu",
       (unsigned long long)audited, (unsigned long long)not_joined, (unsigned long long)missing, (unsigned long long)extra,
       (unsigned long long)gaps, (unsigned long long)s_missing, (unsigned long long)s_dup);
  if (cfg.track_answers) out_acked_missing();
  outf("}");
  out_flush();
}

static void command(char *line) {
  char *args = strchr(line, ' ');
  if (args) *args++ = 0; else args = line + strlen(line);
  if (!strcmp(line, "connect")) {
    job.active = 1;
    job.timeout_ms = strtod(args, NULL);
    job.next = job.settled = job.inflight = job.n_phase = 0;
    job.n_failures = 0;
    start_more();
    finish_job_if_done();
  } else if (!strcmp(line, "measure-start")) {
    memset(&ctr, 0, sizeof ctr);
    hist_reset();
    latency_from = strtod(args, &args);
    latency_to = strtod(args, NULL);
    out_snapshot("measure-started");
  } else if (!strcmp(line, "measure-end")) {
    out_snapshot("measured");
  } else if (!strcmp(line, "total")) {
    outf("{\"ev\":\"total\",\"totalMessages\":%llu}", (unsigned long long)total_messages);
    out_flush();
  } else if (!strcmp(line, "latency")) {
    outf("{\"ev\":\"latency\",\"totalMessages\":%llu,\"sampledMessages\":%llu,", (unsigned long long)total_messages, (unsigned long long)ctr.sampled_messages);
    out_hist("values", hist);
    outf(",");
    out_hist("tsValues", hist_ts);
    if (cfg.mode != MODE_ROOM) { outf(","); out_hist("storedValues", hist_stored); }
    outf("}");
    out_flush();
  } else if (!strcmp(line, "send")) {
    double rate = strtod(args, &args), duration_ms = strtod(args, &args);
    uint32_t text_bytes = (uint32_t)strtoul(args, &args, 10);
    start_send(rate, duration_ms, text_bytes, strtod(args, NULL));
  } else if (!strcmp(line, "answers")) {
    out_answers();
  } else if (!strcmp(line, "storm")) {
    double window = strtod(args, &args);
    start_storm(window, strtod(args, NULL));
  } else if (!strcmp(line, "audit")) {
    audit(args);
  } else if (!strcmp(line, "record")) {
    char *path = args, *rest = strchr(args, ' ');
    if (!rest) die("record takes PATH FIRST COUNT");
    *rest++ = 0;
    uint32_t first = strtoul(rest, &rest, 10), count = strtoul(rest, NULL, 10), marked = 0;
    if (rec_file) fclose(rec_file);
    rec_file = fopen(path, "wb");
    if (!rec_file) die("cannot create %s", path);
    setvbuf(rec_file, NULL, _IOFBF, 1 << 20);
    rec_frames = rec_bytes = 0;
    for (uint32_t i = 0; i < cfg.count; i++) {
      conns[i].recording = conns[i].index >= first && conns[i].index - first < count;
      marked += conns[i].recording;
    }
    outf("{\"ev\":\"recording\",\"connections\":%u}", marked);
    out_flush();
  } else if (!strcmp(line, "record-stop")) {
    for (uint32_t i = 0; i < cfg.count; i++) conns[i].recording = 0;
    if (rec_file && fclose(rec_file) != 0) die("recording: close failed");
    rec_file = NULL;
    outf("{\"ev\":\"recorded\",\"frames\":%llu,\"bytes\":%llu}", (unsigned long long)rec_frames, (unsigned long long)rec_bytes);
    out_flush();
  } else if (!strcmp(line, "close")) {
    for (uint32_t i = 0; i < cfg.count; i++) if (conns[i].fd >= 0) close(conns[i].fd);
    outf("{\"ev\":\"closed\"}");
    out_flush();
    exit(0);
  } else {
    outf("{\"ev\":\"failed\",\"error\":\"unknown command %s\"}", line);
    out_flush();
  }
}

static char in_buf[1 << 20];
static size_t in_len;

static void on_stdin(void) {
  ssize_t r = read(0, in_buf + in_len, sizeof in_buf - in_len - 1);
  if (r == 0) exit(0); /* the harness went away */
  if (r < 0) return;
  in_len += r;
  char *start = in_buf, *nl;
  while ((nl = memchr(start, '\n', in_buf + in_len - start))) {
    *nl = 0;
    command(start);
    start = nl + 1;
  }
  in_len = in_buf + in_len - start;
  memmove(in_buf, start, in_len);
}

/* ---- start-up ------------------------------------------------------------------------------------ */

static void load_tokens(void) {
  tokens = xrealloc(NULL, sizeof(char *) * (cfg.count ? cfg.count : 1));
  if (!cfg.tokens_file) { for (uint32_t i = 0; i < cfg.count; i++) tokens[i] = ""; return; }
  FILE *f = fopen(cfg.tokens_file, "r");
  if (!f) die("cannot open %s", cfg.tokens_file);
  char *line = NULL;
  size_t cap = 0;
  for (uint32_t i = 0; i < cfg.count; i++) {
    ssize_t n = getline(&line, &cap, f);
    if (n <= 0) die("%s has fewer than %u tokens", cfg.tokens_file, cfg.count);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    tokens[i] = strdup(line);
  }
  free(line);
  fclose(f);
}

int main(int argc, char **argv) {
  char *sampled = "";
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--host")) cfg.host = v;
    else if (!strcmp(k, "--port")) cfg.port = atoi(v);
    else if (!strcmp(k, "--path")) cfg.path = v;
    else if (!strcmp(k, "--protocol")) cfg.protocol = v;
    else if (!strcmp(k, "--tokens")) cfg.tokens_file = v;
    else if (!strcmp(k, "--start-index")) cfg.start_index = strtoul(v, NULL, 10);
    else if (!strcmp(k, "--count")) cfg.count = strtoul(v, NULL, 10);
    else if (!strcmp(k, "--room-prefix")) cfg.room_prefix = v;
    else if (!strcmp(k, "--room-count")) cfg.room_count = strtoul(v, NULL, 10);
    else if (!strcmp(k, "--per-address")) cfg.per_address = strtoul(v, NULL, 10);
    else if (!strcmp(k, "--concurrency")) cfg.concurrency = strtoul(v, NULL, 10);
    else if (!strcmp(k, "--track-seqs")) cfg.track_seqs = atoi(v);
    else if (!strcmp(k, "--sampled")) sampled = argv[i + 1];
    else if (!strcmp(k, "--uid-prefix")) cfg.uid_prefix = v;
    else if (!strcmp(k, "--mode")) cfg.mode = !strcmp(v, "pm") ? MODE_PM : !strcmp(v, "gm") ? MODE_GM : !strcmp(v, "room") ? MODE_ROOM : (die("--mode is room, pm or gm"), 0);
    else if (!strcmp(k, "--group")) cfg.group = v;
    else if (!strcmp(k, "--track-answers")) cfg.track_answers = atoi(v);
    else if (!strcmp(k, "--socketio")) cfg.socketio = atoi(v);
    else if (!strcmp(k, "--poll-us")) cfg.poll_us = strtoul(v, NULL, 10);
    else if (!strcmp(k, "--ports")) {
      for (char *s = argv[i + 1]; *s && cfg.n_ports < MAX_PORTS;) {
        char *e;
        unsigned long port = strtoul(s, &e, 10);
        if (e == s || port > 65535) die("--ports takes a list of ports: P1,P2");
        cfg.ports[cfg.n_ports++] = (uint16_t)port;
        s = *e == ',' ? e + 1 : e;
      }
    }
    else die("unknown flag %s", k);
  }
  if (cfg.n_ports && !cfg.port) cfg.port = cfg.ports[0];
  if (!cfg.port || !cfg.room_count || !cfg.per_address) die("--port, --room-count and --per-address are required");
  /* The Socket.IO peer needs no token and takes no subprotocol. */
  if (cfg.socketio) { cfg.path = "/socket.io/?EIO=4&transport=websocket"; cfg.protocol = ""; cfg.tokens_file = NULL; }
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
  rng_state ^= (uint64_t)getpid() << 17 ^ (uint64_t)now_us();

  conns = calloc(cfg.count ? cfg.count : 1, sizeof(Conn));
  if (!conns) die("out of memory");
  for (uint32_t i = 0; i < cfg.count; i++) {
    conns[i].fd = -1;
    conns[i].index = cfg.start_index + i;
    conns[i].room = conns[i].index % cfg.room_count;
  }
  for (char *s = sampled; *s;) {
    char *e;
    uint32_t g = strtoul(s, &e, 10);
    if (e == s) break; /* "-": none sampled */
    s = e;
    if (g >= cfg.start_index && g < cfg.start_index + cfg.count) conns[g - cfg.start_index].sampled = 1;
    if (*s == ',') s++; else break;
  }
  for (uint32_t i = 0; i < cfg.count; i++) conns[i].decodes = conns[i].sampled || cfg.track_answers;
  load_tokens();
  job.handshake = xrealloc(NULL, sizeof(float) * (cfg.count + 1));
  job.welcome = xrealloc(NULL, sizeof(float) * (cfg.count + 1));
  job.join = xrealloc(NULL, sizeof(float) * (cfg.count + 1));
  rbuf = xrealloc(NULL, READ_BUFFER_BYTES);
  out_cap = 1 << 16;
  out_buf = xrealloc(NULL, out_cap);

  ep = epoll_create1(EPOLL_CLOEXEC);
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  struct epoll_event sev = { .events = EPOLLIN, .data.u32 = UINT32_MAX };
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev);
  outf("{\"ev\":\"ready\"}");
  out_flush();

  struct epoll_event events[MAX_EVENTS];
  double woke_us = 0;
  for (;;) {
    int n;
    if (receiver_pacing()) sleep_until(woke_us + cfg.poll_us);
    if (send_ticking()) {
      sleep_until_due();
      n = epoll_wait(ep, events, MAX_EVENTS, 0);
    } else {
      /* Storm drops are due every few µs during the window; otherwise wake for timeouts and due sends only. */
      int timeout = job.active == 2 && job.dropped < cfg.count ? 1 : job.active ? 100 : -1;
      int send_ms = send_wait_ms();
      if (send_ms >= 0 && (timeout < 0 || send_ms < timeout)) timeout = send_ms;
      n = epoll_wait(ep, events, MAX_EVENTS, timeout);
    }
    if (cfg.poll_us) woke_us = now_us();
    ctr.wakeups++;
    for (int i = 0; i < n; i++) {
      uint32_t id = events[i].data.u32;
      if (id == UINT32_MAX) { on_stdin(); continue; }
      Conn *c = &conns[id];
      if (c->fd < 0) continue;
      uint32_t e = events[i].events;
      if (c->state == S_CONNECTING) {
        if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
        continue;
      }
      if ((e & EPOLLOUT) && c->out_len) on_writable(c);
      if (c->fd >= 0 && (e & (EPOLLIN | EPOLLERR | EPOLLHUP))) on_readable(c);
    }
    if (job.active) on_timers();
    send_due();
  }
}
