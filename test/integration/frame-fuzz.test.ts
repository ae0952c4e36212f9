/**
 * A bounded, seeded fuzz of client frames against a real all-in-one process: random bytes, truncated
 * and mutated msgpack and JSON of every client frame type, valid maps with wrong fields, deep nesting,
 * and, to end a connection, frames the protocol refuses (oversized, huge, not UTF-8, too many bad
 * ones). Every server frame must decode as standard msgpack or JSON and be a documented frame; every
 * error code and close code must be in docs/protocol.md's tables (read from the document) and every
 * close must be the one documented for its cause; the process must never exit; and a bystander in a
 * room is served throughout. The same seed sends the same frames: a failure names it (FUZZ_SEED
 * replays it, or tries another).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decode as decodeStandardMsgpack, encode as encodeStandardMsgpack, ExtData } from '@msgpack/msgpack';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../src/shared/auth.js';
import { MESSAGE_KINDS, MODERATE_ACTIONS, ROLES, SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, type Role, type WireFormat } from '../../src/shared/protocol/frames.js';
import { startRoomcastProcess, type RoomcastProcess } from '../helpers/roomcast-process.js';
import { WsTestClient } from '../helpers/ws-client.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed2026) >>> 0;
const SEED_TEXT = `0x${SEED.toString(16)}`;
/** Client frames per run, the frames that end connections included. */
const FRAMES_PER_RUN = 30_000;
/** Connections fuzzed at the same time. */
const LANES = 4;
/** Frames sent before the fuzzer waits for the server to answer a ping (flow control). */
const CHUNK_FRAMES = 100;
const SECRET = 'frame-fuzz-secret-that-is-long-enough';
const API_KEY = 'frame-fuzz-api-key';
const MAX_FRAME_BYTES = 16 * 1024;
/** docs/protocol.md section 3: the WebSocket layer reads nothing larger than this. */
const READ_LIMIT_BYTES = Math.max(4 * MAX_FRAME_BYTES, 64 * 1024);
/** High, so that a connection carries thousands of frames before it is closed with 4000. */
const BAD_FRAME_LIMIT = 3000;
/** A safety net for a server that stops answering (the run fails then); nothing is timed. */
const NO_ANSWER_MS = 20_000;
/** Marker pings carry ts values from here on, which no fuzzed ping carries. */
const MARKER_BASE = 7e15;
const ROOMS = ['lobby', 'fuzz-a', 'fuzz-b', 'nowhere'];
const CREATED_ROOMS = ['fuzz-a', 'fuzz-b'];

// ---- the contract, read from the document --------------------------------------------------------

const PROTOCOL = readFileSync(fileURLToPath(new URL('../../docs/protocol.md', import.meta.url)), 'utf8');

/** The text of the section whose heading starts with `heading`, up to the next heading of its level or above. */
function section(heading: string): string {
  const lines = PROTOCOL.split('\n');
  const start = lines.findIndex((line) => line.startsWith(heading));
  if (start < 0) throw new Error(`docs/protocol.md has no section '${heading}'`);
  const level = /^#+/.exec(heading)![0].length;
  const end = lines.findIndex((line, i) => i > start && /^#+ /.test(line) && /^#+/.exec(line)![0].length <= level);
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

/** The backquoted names in the first column of a section's table body (`| \`a\` / \`b\` | ...`). */
function tableNames(text: string): string[] {
  const names: string[] = [];
  const lines = text.split('\n');
  // A header row is the one right above the |---| line.
  const body = lines.filter((line, i) => line.startsWith('| `') && !lines[i + 1]?.startsWith('|---'));
  for (const row of body) {
    const firstCell = row.split('|')[1]!;
    for (const match of firstCell.matchAll(/`([a-z_]+)`/g)) names.push(match[1]!);
  }
  return names;
}

const DOC_ERROR_CODES = new Set(tableNames(section('## 7. Errors')));
const DOC_CLOSE_CODES = new Set(
  section('## 8. Close codes').split('\n').filter((line) => /^\| \d{4}/.test(line))
    .flatMap((line) => line.split('|')[1]!.split('/').map((code) => Number(code.trim()))),
);
const DOC_SERVER_FRAME_TYPES = new Set([...tableNames(section('### 4.2 Server → client')), ...tableNames(section('### 12.2 Server → client'))]);
const DOC_CLIENT_FRAME_TYPES = [...tableNames(section('### 4.1 Client → server')), ...tableNames(section('### 12.1 Client → server'))];
/** Documented codes that this fuzz must never cause before a connection's last frame. */
const NEVER_BEFORE_THE_END = ['too_many_errors', 'frame_too_large', 'internal', 'idle_timeout', 'slow_consumer', 'draining', 'device_replaced', 'unauthorized'];

// ---- a small seeded PRNG (mulberry32) --------------------------------------------------------------

class Prng {
  constructor(private state: number) {}

  /** In [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, max). */
  int(max: number): number {
    return Math.floor(this.next() * max);
  }

  /** An integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = this.int(256);
    return out;
  }

  /** Smaller sizes far more often than larger ones, up to `max`. */
  size(max: number): number {
    return Math.floor(max ** this.next()) - 1;
  }
}

function connectionSeed(index: number): number {
  return (SEED ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
}

// ---- frame generators ----------------------------------------------------------------------------

interface FuzzFrame {
  category: string;
  data: Buffer | string;
  binary: boolean;
}

const UIDS = ['bystander', 'fuzz-0', 'fuzz-1', 'alice', 'bob.b@x:y', 'carol_c-1'];
/** Fuzzing admins moderate any room: never the bystander, whose room must keep serving it. */
const MODERATED_UIDS = UIDS.filter((uid) => uid !== 'bystander');
const GROUPS = ['fuzz-g1', 'fuzz-g2', 'no-such-group'];
const TEXT_PIECES = ['hi', 'gg', ' ', '\t', '\n', 'é', '字', '😀', '👩‍👩‍👧', 'e\u0301', '\u202e', '\u0000', '\ud800', '\udfff', '<b>', '%s', '{}', '\\', '"'];

function text(r: Prng): string {
  let out = '';
  for (let n = r.size(40); n > 0; n--) out += r.pick(TEXT_PIECES);
  return out;
}

function uids(r: Prng): string[] {
  return Array.from({ length: r.size(6) }, () => r.pick(UIDS));
}

const id = (r: Prng) => `f${r.int(1e6)}`;
const seq = (r: Prng) => (r.chance(0.9) ? r.int(100) : r.int(2 ** 40));
const optional = <T>(r: Prng, field: string, value: () => T): Record<string, T> => (r.chance(0.5) ? { [field]: value() } : {});

/** A well-formed frame of every client frame type of docs/protocol.md 4.1 and 12.1. */
const TEMPLATES: Record<string, (r: Prng) => Record<string, unknown>> = {
  join: (r) => ({ t: 'join', room: r.pick(ROOMS), ...optional(r, 'lastSeq', () => seq(r)) }),
  switch: (r) => ({ t: 'switch', from: r.pick(ROOMS), to: r.pick(ROOMS), ...optional(r, 'lastSeq', () => seq(r)) }),
  leave: (r) => ({ t: 'leave', room: r.pick(ROOMS) }),
  send: (r) => ({ t: 'send', room: r.pick(ROOMS), id: id(r), text: text(r), ...optional(r, 'kind', () => r.pick(MESSAGE_KINDS)) }),
  history: (r) => ({ t: 'history', room: r.pick(ROOMS), ...optional(r, 'beforeSeq', () => seq(r)), ...optional(r, 'limit', () => r.range(1, 500)) }),
  ping: (r) => ({ t: 'ping', ...optional(r, 'ts', () => r.int(2 ** 42)) }),
  moderate: (r) => ({
    t: 'moderate', room: r.pick(ROOMS), id: id(r), action: r.pick(MODERATE_ACTIONS),
    ...optional(r, 'uid', () => r.pick(MODERATED_UIDS)), ...optional(r, 'seq', () => seq(r)),
    ...optional(r, 'durationMs', () => r.range(1, 60_000)), ...optional(r, 'intervalMs', () => r.range(0, 2_000)),
  }),
  room_stats: (r) => ({ t: 'room_stats', room: r.pick(ROOMS) }),
  pm: (r) => ({ t: 'pm', to: r.pick(UIDS), id: id(r), text: text(r) }),
  sync: (r) => ({ t: 'sync', ...optional(r, 'after', () => seq(r)), ...optional(r, 'limit', () => r.range(1, 500)) }),
  inbox_ack: (r) => ({ t: 'inbox_ack', seq: seq(r) }),
  read: (r) => ({ t: 'read', peer: r.pick(UIDS), cseq: seq(r) }),
  conv_history: (r) => ({ t: 'conv_history', peer: r.pick(UIDS), ...optional(r, 'beforeSeq', () => seq(r)), ...optional(r, 'limit', () => r.range(1, 500)) }),
  convs: (r) => ({ t: 'convs', ...optional(r, 'limit', () => r.range(1, 500)) }),
  block: (r) => ({ t: 'block', uid: r.pick(UIDS) }),
  unblock: (r) => ({ t: 'unblock', uid: r.pick(UIDS) }),
  gm: (r) => ({ t: 'gm', group: r.pick(GROUPS), id: id(r), text: text(r) }),
  group_sync: (r) => ({ t: 'group_sync', group: r.pick(GROUPS), ...optional(r, 'after', () => seq(r)), ...optional(r, 'limit', () => r.range(1, 500)) }),
  group_ack: (r) => ({ t: 'group_ack', group: r.pick(GROUPS), seq: seq(r) }),
  group_create: (r) => ({ t: 'group_create', group: r.pick(GROUPS), ...optional(r, 'members', () => uids(r)) }),
  group_add: (r) => ({ t: 'group_add', group: r.pick(GROUPS), uids: uids(r), ...optional(r, 'role', () => r.pick(['admin', 'member'])) }),
  group_remove: (r) => ({ t: 'group_remove', group: r.pick(GROUPS), uids: uids(r) }),
  group_members: (r) => ({ t: 'group_members', group: r.pick(GROUPS), ...optional(r, 'cursor', () => String(r.int(100))), ...optional(r, 'limit', () => r.range(1, 500)) }),
  group_join: (r) => ({ t: 'group_join', group: r.pick(GROUPS) }),
  group_leave: (r) => ({ t: 'group_leave', group: r.pick(GROUPS) }),
  group_invites: (r) => ({ t: 'group_invites', ...optional(r, 'group', () => r.pick(GROUPS)), ...optional(r, 'cursor', () => String(r.int(100))), ...optional(r, 'limit', () => r.range(1, 500)) }),
};
const TEMPLATE_TYPES = Object.keys(TEMPLATES);

const template = (r: Prng) => TEMPLATES[r.pick(TEMPLATE_TYPES)]!(r);

/** Values of every msgpack and JSON type, and strings just outside what the fields accept. */
const ODD_VALUES: Array<(r: Prng) => unknown> = [
  () => null, () => true, () => false, () => 0, () => -1, () => -0.5, () => 1.5, () => 2 ** 53, () => -(2 ** 63), () => 2 ** 64,
  () => Number.NaN, () => Number.POSITIVE_INFINITY, () => Number.NEGATIVE_INFINITY, () => 2n ** 63n, () => -(2n ** 63n),
  () => '', () => ' ', () => 'a.>', () => '*', () => 'lobby\u0000', () => 'lob by', () => '\ud800', () => 'x'.repeat(65), () => 'x'.repeat(129),
  () => '😀'.repeat(40), () => '__proto__', () => 'constructor',
  () => [], (r) => [r.pick(ROOMS)], () => ({}), (r) => template(r), (r) => new Uint8Array(r.int(8)),
  (r) => new ExtData(r.range(-128, 127), new Uint8Array(r.size(12))), (r) => new Date(r.int(2 ** 42)),
];
const oddValue = (r: Prng) => r.pick(ODD_VALUES)(r);
const NEAR_MISS_TYPES = ['', 'JOIN', 'join ', 'joined', 'welcome', 'error', 'pong', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'send\u0000'];

/** A well-formed frame with one thing wrong: a field of the wrong type or value, missing, extra, or a wrong `t`. */
function wrongFrame(r: Prng): unknown {
  const frame = template(r);
  const fields = Object.keys(frame);
  switch (r.int(6)) {
    case 0: frame[r.pick(fields)] = oddValue(r); return frame;
    case 1: delete frame[r.pick(fields)]; return frame;
    // defineProperty, so that __proto__ becomes a key of the frame instead of its prototype.
    case 2: Object.defineProperty(frame, r.pick(['x', 'data', 'prio', 'uid', 'role', '__proto__', 'seq']), { value: oddValue(r), enumerable: true }); return frame;
    case 3: frame.t = r.pick(NEAR_MISS_TYPES); return frame;
    case 4: return r.chance(0.5) ? [frame] : { frame };
    default: for (const field of fields) if (r.chance(0.5)) frame[field] = oddValue(r); return frame;
  }
}

function msgpack(value: unknown): Buffer {
  return Buffer.from(encodeStandardMsgpack(value, { useBigInt64: true }));
}

/** JSON text; numbers JSON cannot spell with JSON.stringify (huge, infinite) are written raw. */
function json(value: unknown): string {
  const raw = (literal: string) => `@@raw:${literal}@@`;
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return raw(v.toString());
    if (typeof v === 'number' && !Number.isFinite(v)) return raw(Number.isNaN(v) ? 'NaN' : v > 0 ? '1e400' : '-1e400');
    if (v instanceof ExtData) return { type: v.type };
    if (v instanceof Uint8Array) return [...v];
    return v;
  }) ?? 'null';
  return text.replace(/"@@raw:([^@"]*)@@"/g, '$1');
}

/** Byte-level damage: bit flips, msgpack type bytes, insertions, deletions, repeats. */
const TYPE_BYTES = [0xc1, 0xc0, 0xc4, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcf, 0xd3, 0xd4, 0xd8, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xff];
function mutateBytes(r: Prng, input: Buffer): Buffer {
  let bytes = Buffer.from(input);
  for (let n = r.range(1, 4); n > 0; n--) {
    const at = r.int(bytes.length + 1);
    switch (r.int(5)) {
      case 0: if (at < bytes.length) bytes[at] = bytes[at]! ^ (1 << r.int(8)); break;
      case 1: if (at < bytes.length) bytes[at] = r.pick(TYPE_BYTES); break;
      case 2: bytes = Buffer.concat([bytes.subarray(0, at), r.bytes(r.range(1, 4)), bytes.subarray(at)]); break;
      case 3: bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + r.range(1, 4))]); break;
      default: bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at, at + r.range(1, 16)), bytes.subarray(at)]); break;
    }
  }
  return bytes;
}

const JSON_CHARS = ['{', '}', '[', ']', '"', ':', ',', '\\', ' ', '0', '-', 'e', 'n', 't', 'u', 'é', '😀', '\u0000'];
/** Character-level damage, so the text stays valid UTF-8 (a cut surrogate pair is sent as U+FFFD). */
function mutateText(r: Prng, input: string): string {
  let out = input;
  for (let n = r.range(1, 4); n > 0; n--) {
    const at = r.int(out.length + 1);
    switch (r.int(4)) {
      case 0: out = out.slice(0, at) + out.slice(at + r.range(1, 3)); break;
      case 1: out = out.slice(0, at) + r.pick(JSON_CHARS) + out.slice(at); break;
      case 2: out = out.slice(0, at) + r.pick(JSON_CHARS) + out.slice(at + 1); break;
      default: out = out.slice(0, at) + out.slice(at, at + r.range(1, 16)) + out.slice(at); break;
    }
  }
  return out;
}

/** Arrays and maps nested up to what fits in a frame, alone or as a field of a frame, in msgpack or JSON. */
function deepFrame(r: Prng): FuzzFrame {
  const shape = r.int(6);
  const budget = MAX_FRAME_BYTES - 64;
  if (shape === 0) {
    const depth = r.range(10, budget);
    return { category: 'deep msgpack array', data: Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from([0xc0])]), binary: true };
  }
  if (shape === 1) {
    const level = Buffer.from([0x81, 0xa1, 0x61]);
    const depth = r.range(10, Math.floor(budget / level.length));
    return { category: 'deep msgpack map', data: Buffer.concat([...Array<Buffer>(depth).fill(level), Buffer.from([0x01])]), binary: true };
  }
  if (shape === 2) {
    const frame = template(r);
    const field = r.pick(Object.keys(frame).filter((key) => key !== 't').concat('text'));
    const depth = r.range(10, budget - 100);
    const head = Buffer.concat([Buffer.from([0x82]), msgpack('t'), msgpack(String(frame.t)), msgpack(field)]);
    return { category: 'deep msgpack field', data: Buffer.concat([head, Buffer.alloc(depth, 0x91), Buffer.from([0xc0])]), binary: true };
  }
  if (shape === 3) {
    const depth = r.range(10, Math.floor(budget / 2));
    const unbalanced = r.chance(0.2) ? 1 : 0;
    return { category: 'deep JSON array', data: '['.repeat(depth) + ']'.repeat(depth - unbalanced), binary: false };
  }
  if (shape === 4) {
    const depth = r.range(10, Math.floor(budget / 6));
    return { category: 'deep JSON object', data: `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`, binary: false };
  }
  const frame = template(r);
  const depth = r.range(10, Math.floor(budget / 2) - 50);
  return { category: 'deep JSON field', data: `{"t":${JSON.stringify(frame.t)},"room":${'['.repeat(depth)}"lobby"${']'.repeat(depth)}}`, binary: false };
}

/** One frame of the mixed stream. */
function fuzzFrame(r: Prng): FuzzFrame {
  const roll = r.int(100);
  if (roll < 12) return { category: 'random bytes', data: r.bytes(r.size(r.chance(0.05) ? MAX_FRAME_BYTES : 600)), binary: true };
  if (roll < 24) {
    const whole = msgpack(template(r));
    return { category: 'truncated msgpack', data: whole.subarray(0, r.int(whole.length)), binary: true };
  }
  if (roll < 40) return { category: 'mutated msgpack', data: mutateBytes(r, msgpack(template(r))), binary: true };
  if (roll < 54) return { category: 'msgpack with a wrong field', data: msgpack(wrongFrame(r)), binary: true };
  if (roll < 62) return { category: 'valid msgpack', data: msgpack(template(r)), binary: true };
  if (roll < 69) {
    const whole = json(template(r));
    return { category: 'truncated JSON', data: whole.slice(0, r.int(whole.length)), binary: false };
  }
  if (roll < 78) return { category: 'mutated JSON', data: mutateText(r, json(template(r))), binary: false };
  if (roll < 88) return { category: 'JSON with a wrong field', data: json(wrongFrame(r)), binary: false };
  if (roll < 92) return { category: 'valid JSON', data: json(template(r)), binary: false };
  if (roll < 96) return deepFrame(r);
  return { category: 'random text', data: Array.from({ length: r.size(200) }, () => String.fromCodePoint(r.chance(0.8) ? r.range(0x20, 0x7e) : r.range(0xa0, 0xd7ff))).join(''), binary: false };
}

/** Always a bad frame: not msgpack, or a strict prefix of a JSON object. */
function badFrame(r: Prng): FuzzFrame {
  if (r.chance(0.5)) return { category: 'bad frame', data: Buffer.concat([Buffer.from([0xc1]), r.bytes(r.size(64))]), binary: true };
  const whole = json(template(r));
  return { category: 'bad frame', data: whole.slice(0, r.int(whole.length)), binary: false };
}

/** Text frames whose bytes are not UTF-8. */
function invalidUtf8(r: Prng): Buffer {
  const valid = Buffer.from(json(template(r)));
  const damage = r.pick([[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf5, 0x80, 0x80, 0x80], [0x80], [0xe2, 0x82]]);
  const at = r.int(valid.length + 1);
  return Buffer.concat([valid.subarray(0, at), Buffer.from(damage), valid.subarray(at)]);
}

function isUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

// ---- how a connection ends, and what the document says happens then ------------------------------

type Ending = 'client_close' | 'oversize' | 'huge' | 'invalid_utf8' | 'too_many_errors';
const ENDINGS: Ending[] = ['client_close', 'oversize', 'invalid_utf8', 'huge', 'too_many_errors'];

/** docs/protocol.md sections 3, 6.13 and 8: the close code (and error frame) each ending gets. */
const EXPECTED: Record<Ending, { close: number; error?: string }> = {
  client_close: { close: 1000 },
  oversize: { close: 1009, error: 'frame_too_large' },
  huge: { close: 1006 },
  invalid_utf8: { close: 1006 },
  too_many_errors: { close: 4000, error: 'too_many_errors' },
};

interface Plan {
  index: number;
  format: WireFormat;
  role: Role;
  mixedFrames: number;
  ending: Ending;
  /** Frames in all, with the marker pings and the ending. */
  total: number;
}

function plan(index: number): Plan {
  const r = new Prng(connectionSeed(index));
  const mixedFrames = r.range(500, BAD_FRAME_LIMIT - 100);
  const ending = ENDINGS[index % ENDINGS.length]!;
  const markers = Math.ceil(mixedFrames / CHUNK_FRAMES);
  return {
    index, format: r.chance(0.5) ? 'msgpack' : 'json', role: r.pick(ROLES), mixedFrames, ending,
    total: mixedFrames + markers + (ending === 'too_many_errors' ? BAD_FRAME_LIMIT : ending === 'client_close' ? 0 : 1),
  };
}

// ---- checking what the server sends --------------------------------------------------------------

const LONE_SURROGATE = /\p{Cs}/u;

/** Problems with one value of a server frame: docs/protocol.md section 3 allows maps, arrays, strings, numbers, booleans. */
function wireProblem(value: unknown, path: string): string | null {
  if (typeof value === 'string') return LONE_SURROGATE.test(value) ? `${path} is not well-formed Unicode` : null;
  if (typeof value === 'number' || typeof value === 'boolean') return null;
  if (value === null) return `${path} is null (absent fields are omitted)`;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const problem = wireProblem(item, `${path}[${i}]`);
      if (problem) return problem;
    }
    return null;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, item] of Object.entries(value)) {
      const problem = wireProblem(item, `${path}.${key}`);
      if (problem) return problem;
    }
    return null;
  }
  return `${path} is not a plain value (${Object.prototype.toString.call(value)})`;
}

type ServerFrame = Record<string, unknown> & { t: string };

/** Decodes one server frame strictly and checks it against the document; returns the frame or a problem. */
function readServerFrame(data: Buffer, isBinary: boolean, format: WireFormat): ServerFrame | string {
  if (isBinary !== (format === 'msgpack')) return `a ${isBinary ? 'binary' : 'text'} frame on a ${format} connection`;
  let frame: unknown;
  try {
    if (isBinary) frame = decodeStandardMsgpack(data);
    else if (!isUtf8(data)) return 'a text frame that is not UTF-8';
    else frame = JSON.parse(data.toString('utf8'));
  } catch (error) {
    return `undecodable server frame (${String(error)}): ${data.subarray(0, 80).toString('hex')}`;
  }
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) return `a server frame that is not a map: ${JSON.stringify(frame)}`;
  const { t } = frame as Record<string, unknown>;
  if (typeof t !== 'string' || !DOC_SERVER_FRAME_TYPES.has(t)) return `undocumented server frame type ${JSON.stringify(t)}`;
  const problem = wireProblem(frame, t);
  if (problem) return `${problem}: ${describeFrame(frame)}`;
  if (t === 'error') {
    const { code, message, ref } = frame as Record<string, unknown>;
    if (typeof code !== 'string' || !DOC_ERROR_CODES.has(code)) return `undocumented error code: ${describeFrame(frame)}`;
    if (typeof message !== 'string') return `an error without a message: ${describeFrame(frame)}`;
    if (ref !== undefined && !DOC_CLIENT_FRAME_TYPES.includes(ref as string)) return `an error whose ref is not a client frame type: ${describeFrame(frame)}`;
  }
  return frame as ServerFrame;
}

function describeFrame(frame: unknown): string {
  return JSON.stringify(frame, (_key, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))?.slice(0, 300) ?? String(frame);
}

function describeSent(frame: FuzzFrame): string {
  const bytes = typeof frame.data === 'string' ? Buffer.from(frame.data) : frame.data;
  return `${frame.category} (${frame.binary ? 'binary' : 'text'}, ${bytes.length} B): ${bytes.subarray(0, 48).toString('hex')}`;
}

/** A fuzzing connection: it keeps what it receives, checked, and the problems it saw. */
class FuzzSocket {
  readonly frames: ServerFrame[] = [];
  closeCode: number | null = null;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket, readonly format: WireFormat, report: (problem: string) => void) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const frame = readServerFrame(data, isBinary, format);
      if (typeof frame === 'string') report(frame);
      else this.frames.push(frame);
      this.wake();
    });
    ws.on('close', (code: number) => {
      this.closeCode = code;
      this.wake();
    });
    ws.on('error', () => undefined); // a dropped connection shows as close 1006
  }

  static open(url: string, token: string, format: WireFormat, report: (problem: string) => void): Promise<FuzzSocket> {
    const ws = new WebSocket(`${url}?token=${encodeURIComponent(token)}`, [format === 'json' ? SUBPROTOCOL_JSON : SUBPROTOCOL_MSGPACK]);
    const socket = new FuzzSocket(ws, format, report);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(socket));
      ws.once('unexpected-response', (_request, response) => reject(new Error(`upgrade refused: HTTP ${response.statusCode}`)));
      ws.once('close', (code) => reject(new Error(`closed (${code}) before it opened`)));
    });
  }

  /** Sends the frame unless the connection is closing already; says whether it did. */
  send(frame: FuzzFrame): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(frame.data, { binary: frame.binary });
    return true;
  }

  /** Resolves once `done()` holds or the connection is closed. */
  until(done: () => boolean, what: string): Promise<void> {
    if (done() || this.closeCode !== null) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const wake = () => {
        if (!done() && this.closeCode === null) return;
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`no ${what} within ${NO_ANSWER_MS} ms`));
      }, NO_ANSWER_MS);
      this.waiters.add(wake);
    });
  }

  errorCodes(from = 0): string[] {
    return this.frames.slice(from).filter((frame) => frame.t === 'error').map((frame) => String(frame.code));
  }

  private wake(): void {
    for (const wake of [...this.waiters]) wake();
  }
}

// ---- the run -------------------------------------------------------------------------------------

let roomcast: RoomcastProcess;
let wsUrl: string;
let apiUrl: string;
let metricsUrl: string;
let bystander: WsTestClient;
const bystanderProblems: string[] = [];
let bystanderPings = 0;

beforeAll(async () => {
  roomcast = await startRoomcastProcess('all-in-one', {
    ROOMCAST_JWT_SECRET: SECRET, ROOMCAST_API_KEYS: API_KEY,
    ROOMCAST_MAX_FRAME_BYTES: String(MAX_FRAME_BYTES), ROOMCAST_BAD_FRAME_LIMIT: String(BAD_FRAME_LIMIT),
    ROOMCAST_FRAME_RATE_PER_SEC: '1000000', ROOMCAST_FRAME_BURST: '1000000', ROOMCAST_MAX_CONNECTIONS_PER_IP: '0',
  });
  const { wsPort, gatewayHttpPort, apiPort } = roomcast.ports;
  wsUrl = `ws://127.0.0.1:${wsPort}/ws`;
  apiUrl = `http://127.0.0.1:${apiPort}`;
  metricsUrl = `http://127.0.0.1:${gatewayHttpPort}/metrics`;
  for (const room of CREATED_ROOMS) {
    const response = await fetch(`${apiUrl}/v1/rooms/${room}`, { method: 'PUT', headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' }, body: '{}' });
    expect(response.status).toBe(201);
  }
  bystander = await WsTestClient.connect(wsUrl, { token: await token('bystander', 'viewer') });
  bystander.ws.on('message', (data: Buffer, isBinary: boolean) => {
    const frame = readServerFrame(data, isBinary, 'msgpack');
    if (typeof frame === 'string') bystanderProblems.push(frame);
    else if (frame.t === 'error') bystanderProblems.push(`the bystander got an error: ${describeFrame(frame)}`);
  });
  await bystander.next((f) => f.t === 'welcome');
  bystander.send({ t: 'join', room: 'lobby' });
  await bystander.next((f) => f.t === 'joined' && f.room === 'lobby');
});

afterAll(async () => {
  bystander?.close();
  await roomcast?.stop();
});

function token(uid: string, role: Role): Promise<string> {
  return signToken({ uid, role, ttlSeconds: 600, ...(role === 'streamer' || role === 'moderator' ? { rooms: ['fuzz-a'] } : {}) }, { secret: SECRET });
}

/** The bystander's connection is open and answers a ping. */
async function pingBystander(): Promise<void> {
  const ts = ++bystanderPings;
  const from = bystander.frames.length;
  bystander.send({ t: 'ping', ts });
  await bystander.next((f) => f.t === 'pong' && f.ts === ts, NO_ANSWER_MS, from);
  if (bystander.closeCode !== null) throw new Error(`the bystander was closed with ${bystander.closeCode}`);
}

/** Fuzzes one connection to its planned ending; returns the frames it sent. */
async function fuzzConnection(p: Plan, problems: string[]): Promise<number> {
  const label = `connection ${p.index} (${p.format}, ${p.role}, ending ${p.ending})`;
  const report = (problem: string) => problems.push(`${label}: ${problem}`);
  const r = new Prng(connectionSeed(p.index) ^ 0x51ed);
  const socket = await FuzzSocket.open(wsUrl, await token(`fuzz-${p.index}`, p.role), p.format, report);
  await socket.until(() => socket.frames.some((f) => f.t === 'welcome'), 'welcome');
  let sent = 0;
  let mixed = 0;
  const send = (frame: FuzzFrame) => { if (socket.send(frame)) sent++; };
  for (let chunk = 0; mixed < p.mixedFrames; chunk++) {
    const frames = Array.from({ length: Math.min(CHUNK_FRAMES, p.mixedFrames - mixed) }, () => fuzzFrame(r));
    mixed += frames.length;
    const from = socket.frames.length;
    for (const frame of frames) send(frame);
    const marker = MARKER_BASE + chunk;
    send({ category: 'marker ping', data: msgpack({ t: 'ping', ts: marker }), binary: true });
    await socket.until(() => socket.frames.some((f, i) => i >= from && f.t === 'pong' && f.ts === marker), `pong for chunk ${chunk}`);
    const fatal = socket.errorCodes(from).filter((code) => NEVER_BEFORE_THE_END.includes(code));
    if (socket.closeCode !== null || fatal.length > 0) {
      const answers = socket.frames.slice(from).filter((f) => f.t === 'error' && NEVER_BEFORE_THE_END.includes(String(f.code))).map(describeFrame);
      report(`chunk ${chunk}: close ${socket.closeCode}, errors ${JSON.stringify(answers)}; it sent:\n    ${frames.map(describeSent).join('\n    ')}`);
      socket.ws.terminate();
      return sent;
    }
  }
  const from = socket.frames.length;
  switch (p.ending) {
    case 'client_close':
      socket.ws.close(1000);
      break;
    case 'oversize': {
      const size = r.range(MAX_FRAME_BYTES + 1, READ_LIMIT_BYTES);
      send(r.chance(0.5) ? { category: 'oversize', data: r.bytes(size), binary: true } : { category: 'oversize', data: 'x'.repeat(size), binary: false });
      break;
    }
    case 'huge': {
      const size = r.range(READ_LIMIT_BYTES + 1, READ_LIMIT_BYTES + 64 * 1024);
      send(r.chance(0.5) ? { category: 'huge', data: r.bytes(size), binary: true } : { category: 'huge', data: 'x'.repeat(size), binary: false });
      break;
    }
    case 'invalid_utf8': {
      const bytes = invalidUtf8(r);
      if (isUtf8(bytes)) throw new Error(`the generator made valid UTF-8: ${bytes.toString('hex')}`);
      send({ category: 'invalid UTF-8', data: bytes, binary: false });
      break;
    }
    case 'too_many_errors':
      for (let i = 0; i < BAD_FRAME_LIMIT; i++) send(badFrame(r));
      break;
  }
  await socket.until(() => false, 'close');
  const expected = EXPECTED[p.ending];
  if (!DOC_CLOSE_CODES.has(socket.closeCode!)) report(`undocumented close code ${socket.closeCode}`);
  if (socket.closeCode !== expected.close) report(`closed with ${socket.closeCode}, documented: ${expected.close}`);
  const codes = socket.errorCodes(from);
  if (expected.error && !codes.includes(expected.error)) report(`no error ${expected.error} before the close (errors: ${JSON.stringify(codes.slice(-5))})`);
  const unexpected = codes.filter((code) => NEVER_BEFORE_THE_END.includes(code) && code !== expected.error);
  if (unexpected.length > 0) report(`errors ${JSON.stringify([...new Set(unexpected)])} at the end`);
  return sent;
}

describe(`frame fuzz, seed ${SEED_TEXT}`, () => {
  it('the document lists what the fuzz checks against, and the fuzz sends every client frame type', () => {
    expect(DOC_ERROR_CODES.size).toBeGreaterThan(20);
    expect([...DOC_CLOSE_CODES].sort()).toEqual(expect.arrayContaining([1000, 1006, 1009, 4000]));
    expect(DOC_SERVER_FRAME_TYPES).toContain('error');
    expect([...TEMPLATE_TYPES].sort()).toEqual([...new Set(DOC_CLIENT_FRAME_TYPES)].sort());
  });

  it(`tens of thousands of hostile frames: documented answers and closes only, no exit, the bystander served (replay: FUZZ_SEED=${SEED_TEXT})`, async () => {
    const plans: Plan[] = [];
    for (let planned = 0; planned < FRAMES_PER_RUN; planned += plans.at(-1)!.total) plans.push(plan(plans.length));
    const problems: string[] = [];
    const queue = [...plans];
    let framesSent = 0;
    await Promise.all(Array.from({ length: LANES }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const sent = await fuzzConnection(next, problems);
        framesSent += sent;
        if (!roomcast.running()) throw new Error(`the process exited (seed ${SEED_TEXT}, after connection ${next.index}):\n${roomcast.output()}`);
        await pingBystander();
      }
    }));
    console.info(`frame fuzz: seed ${SEED_TEXT}, ${framesSent} frames over ${plans.length} connections`);

    expect(problems.slice(0, 20), `seed ${SEED_TEXT}: ${problems.length} problem(s)\n${roomcast.output().slice(-1500)}`).toEqual([]);
    expect(bystanderProblems.slice(0, 20), `seed ${SEED_TEXT}`).toEqual([]);
    expect(framesSent).toBeGreaterThanOrEqual(FRAMES_PER_RUN);
    expect(roomcast.running()).toBe(true);

    // The bystander still gets what a backend publishes into its room.
    const response = await fetch(`${apiUrl}/v1/rooms/lobby/messages`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ kind: 'system', text: 'the fuzz is over', id: 'after-the-fuzz' }),
    });
    expect(response.status).toBe(201);
    await bystander.until(() => (bystander.messages('lobby').some((m) => m.cid === 'after-the-fuzz') ? true : undefined), NO_ANSWER_MS, 'the message after the fuzz');
    expect(bystander.closeCode).toBeNull();
    expect(await (await fetch(metricsUrl)).text()).toMatch(/^roomcast_unhandled_rejections_total 0$/m);
  }, 120_000);
});
