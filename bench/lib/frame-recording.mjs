/**
 * Recordings of Roomcast's `messages` frames, as the native load client writes them (`record`,
 * bench/native/loadclient.c): per frame a u64 arrival time (CLOCK_MONOTONIC µs), a u32 payload
 * length and the payload, little endian. The limit peer replays them (limit-peer.mjs) and the
 * harness checks that what the limit peer's viewers received is byte for byte what Roomcast's did.
 *
 * Only two things may differ, and keep their encoded length: the scheduled send time that starts
 * each text (a fixed-width decimal, `stampOf` in clock.mjs) and the message's `ts` (msgpack
 * float64 or 64-bit integer). Both are moved by the replay's time shift so latency is measured the
 * same way; seqs, uids, cids, kinds and the layout stay Roomcast's bytes.
 */
import { readFileSync } from 'node:fs';

const HEADER_BYTES = 12;

/**
 * Every frame of the files, ordered by arrival: `{ at, payload }` with payload a view into the
 * file's bytes (no copy).
 */
export function readRecording(files) {
  const frames = [];
  for (const file of files) {
    const bytes = readFileSync(file);
    let at = 0;
    while (at < bytes.length) {
      if (bytes.length - at < HEADER_BYTES) throw new Error(`${file}: truncated frame header at byte ${at}`);
      const arrivalUs = Number(bytes.readBigUInt64LE(at));
      const length = bytes.readUInt32LE(at + 8);
      at += HEADER_BYTES;
      if (bytes.length - at < length) throw new Error(`${file}: truncated frame at byte ${at}`);
      frames.push({ at: arrivalUs, payload: bytes.subarray(at, at + length) });
      at += length;
    }
  }
  return frames.sort((a, b) => a.at - b.at);
}

/**
 * Where a `messages` frame's rewritable fields are: `{ room, firstSeq, lastSeq, messages, stamps:
 * [offset, length, value][], ts: [offset, header][] }`. Throws on anything that is not a messages frame.
 */
export function frameLayout(payload) {
  const reader = new Reader(payload);
  const layout = { room: null, firstSeq: null, lastSeq: null, messages: 0, stamps: [], ts: [] };
  const fields = reader.mapHeader();
  let type = null;
  for (let i = 0; i < fields; i++) {
    const key = reader.str();
    if (key === 't') type = reader.str();
    else if (key === 'room') layout.room = reader.str();
    else if (key === 'msgs') {
      layout.messages = reader.arrayHeader();
      for (let m = 0; m < layout.messages; m++) readMessage(reader, layout);
    } else reader.skip();
  }
  if (type !== 'messages' || layout.room === null) throw new Error(`not a messages frame (t: ${type})`);
  return layout;
}

function readMessage(reader, layout) {
  const fields = reader.mapHeader();
  for (let f = 0; f < fields; f++) {
    const key = reader.str();
    if (key === 'seq') {
      const seq = reader.number();
      layout.firstSeq ??= seq;
      layout.lastSeq = seq;
    } else if (key === 'ts') {
      const header = reader.bytes[reader.at];
      if (header !== 0xcb && header !== 0xcf && header !== 0xd3) throw new Error(`ts encoded as 0x${header.toString(16)}: not a fixed 9-byte number`);
      layout.ts.push([reader.at, header]);
      reader.skip();
    } else if (key === 'text') {
      const text = reader.strBounds();
      let end = text.start;
      while (end < text.end && reader.bytes[end] >= 0x30 && reader.bytes[end] <= 0x39) end++;
      if (end > text.start && end < text.end && reader.bytes[end] === 0x7c) {
        layout.stamps.push([text.start, end - text.start, Number(reader.bytes.latin1Slice(text.start, end))]);
      }
    } else reader.skip();
  }
}

/**
 * A recording cut into the steps of a ramp, for the limit peer: step i holds the frames that
 * arrived from `stepStartsUs[i]` until the next step's start, with each frame's time after its
 * step's start (Roomcast's step started at `startUs`) and the positions to rewrite, in flat arrays (no object per frame, so replaying
 * puts no garbage-collection work of its own into the limit peer's CPU); frame n goes to room
 * `rooms[roomIndex[n]]`. `firstSeqs`: each room's seq before its first recorded frame, which the
 * limit peer's joins answer.
 */
export function replayPlan(files, stepStartsUs) {
  const frames = readRecording(files);
  const firstSeqs = {};
  const steps = stepStartsUs.map(() => ({ count: 0, bytes: 0, messages: 0 }));
  const stepOf = (at) => {
    let i = 0;
    while (i + 1 < stepStartsUs.length && at >= stepStartsUs[i + 1]) i++;
    return i;
  };
  // Room names once, by index: a string per frame would stay in the limit peer's heap all run.
  const rooms = [];
  const roomIds = new Map();
  const parsed = frames.map((frame) => {
    const layout = frameLayout(frame.payload);
    if (!(layout.room in firstSeqs)) firstSeqs[layout.room] = layout.firstSeq === null ? 0 : layout.firstSeq - 1;
    if (!roomIds.has(layout.room)) { roomIds.set(layout.room, rooms.length); rooms.push(layout.room); }
    const step = steps[stepOf(frame.at)];
    step.count++;
    step.bytes += frame.payload.length;
    step.messages += layout.messages;
    step.stamps = (step.stamps ?? 0) + layout.stamps.length;
    step.ts = (step.ts ?? 0) + layout.ts.length;
    return layout;
  });
  const plans = steps.map((step, i) => ({
    startUs: stepStartsUs[i], frames: step.count, messageTotal: step.messages, messages: new Uint32Array(step.count),
    payload: Buffer.alloc(step.bytes), offset: new Uint32Array(step.count + 1), dueUs: new Float64Array(step.count),
    roomIndex: new Uint32Array(step.count), lastSeq: new Float64Array(step.count),
    stampFrom: new Uint32Array(step.count + 1), stampOffset: new Uint32Array(step.stamps ?? 0), stampLength: new Uint8Array(step.stamps ?? 0), stampValue: new Float64Array(step.stamps ?? 0),
    tsFrom: new Uint32Array(step.count + 1), tsOffset: new Uint32Array(step.ts ?? 0), tsHeader: new Uint8Array(step.ts ?? 0),
    filled: 0, bytes: 0, stamps: 0, ts: 0,
  }));
  frames.forEach((frame, index) => {
    const i = stepOf(frame.at);
    const plan = plans[i];
    const layout = parsed[index];
    const n = plan.filled++;
    frame.payload.copy(plan.payload, plan.bytes);
    plan.dueUs[n] = frame.at - stepStartsUs[i];
    plan.roomIndex[n] = roomIds.get(layout.room);
    plan.lastSeq[n] = layout.lastSeq ?? 0;
    plan.messages[n] = layout.messages;
    for (const [offset, length, value] of layout.stamps) {
      plan.stampOffset[plan.stamps] = plan.bytes + offset;
      plan.stampLength[plan.stamps] = length;
      plan.stampValue[plan.stamps++] = value;
    }
    for (const [offset, header] of layout.ts) {
      plan.tsOffset[plan.ts] = plan.bytes + offset;
      plan.tsHeader[plan.ts++] = header;
    }
    plan.bytes += frame.payload.length;
    plan.offset[n + 1] = plan.bytes;
    plan.stampFrom[n + 1] = plan.stamps;
    plan.tsFrom[n + 1] = plan.ts;
  });
  return { firstSeqs, rooms, steps: plans };
}

/**
 * Frame `n` of a step's plan, moved by `shiftUs` (stamps; ts by the same time in ms), as a new
 * buffer of the same length. Throws when a moved stamp would not fit its digits.
 */
export function replayFrame(plan, n, shiftUs) {
  const from = plan.offset[n];
  const out = Buffer.allocUnsafe(plan.offset[n + 1] - from);
  plan.payload.copy(out, 0, from, plan.offset[n + 1]);
  for (let s = plan.stampFrom[n]; s < plan.stampFrom[n + 1]; s++) {
    const length = plan.stampLength[s];
    const digits = String(Math.round(plan.stampValue[s] + shiftUs)).padStart(length, '0');
    if (digits.length !== length) throw new Error(`a stamp moved by ${shiftUs} µs needs ${digits.length} digits, not ${length}`);
    out.latin1Write(digits, plan.stampOffset[s] - from, length);
  }
  const shiftMs = Math.round(shiftUs / 1000);
  for (let t = plan.tsFrom[n]; t < plan.tsFrom[n + 1]; t++) {
    const at = plan.tsOffset[t] - from + 1;
    const header = plan.tsHeader[t];
    if (header === 0xcb) out.writeDoubleBE(out.readDoubleBE(at) + shiftMs, at);
    else if (header === 0xcf) out.writeBigUInt64BE(out.readBigUInt64BE(at) + BigInt(shiftMs), at);
    else out.writeBigInt64BE(out.readBigInt64BE(at) + BigInt(shiftMs), at);
  }
  return out;
}

/** `payload` with its stamps' digits and ts' values zeroed: what a replay must keep byte for byte. */
function invariantBytes(payload, layout) {
  const copy = Buffer.from(payload);
  for (const [offset, length] of layout.stamps) copy.fill(0x30, offset, offset + length);
  for (const [offset] of layout.ts) copy.fill(0, offset + 1, offset + 9);
  return copy;
}

/**
 * Compares two recordings room by room, frame by frame: the same frames in the same order, each of
 * the same length and identical outside the stamps' digits and the ts values. Returns the figures
 * compared; `identical` is false with `difference` describing the first mismatch.
 */
export function compareRecordings(expectedFiles, actualFiles) {
  const byRoom = (frames) => {
    const rooms = new Map();
    for (const frame of frames) {
      const layout = frameLayout(frame.payload);
      let list = rooms.get(layout.room);
      if (!list) rooms.set(layout.room, (list = []));
      list.push({ payload: frame.payload, layout });
    }
    return rooms;
  };
  const expected = byRoom(readRecording(expectedFiles));
  const actual = byRoom(readRecording(actualFiles));
  const result = { identical: true, rooms: expected.size, frames: 0, bytes: 0, messages: 0, difference: null };
  const differ = (text) => { result.identical = false; result.difference = text; return result; };
  for (const room of new Set([...expected.keys(), ...actual.keys()])) {
    const ours = expected.get(room) ?? [];
    const theirs = actual.get(room) ?? [];
    if (ours.length !== theirs.length) return differ(`room ${room}: Roomcast's recording has ${ours.length} frames, the limit peer's ${theirs.length}`);
    for (let i = 0; i < ours.length; i++) {
      const a = ours[i];
      const b = theirs[i];
      if (a.payload.length !== b.payload.length) return differ(`room ${room}, frame ${i}: ${a.payload.length} bytes from Roomcast, ${b.payload.length} from the limit peer`);
      const left = invariantBytes(a.payload, a.layout);
      const right = invariantBytes(b.payload, a.layout);
      if (!left.equals(right)) {
        let at = 0;
        while (left[at] === right[at]) at++;
        return differ(`room ${room}, frame ${i} (seqs ${a.layout.firstSeq}–${a.layout.lastSeq}): byte ${at} is 0x${a.payload[at].toString(16)} from Roomcast, 0x${b.payload[at].toString(16)} from the limit peer`);
      }
      result.frames++;
      result.bytes += a.payload.length;
      result.messages += a.layout.messages;
    }
  }
  if (result.frames === 0) return differ('no frames were recorded');
  return result;
}

/** Just enough msgpack reading for the frames Roomcast writes (maps, arrays, strings, numbers). */
class Reader {
  constructor(bytes) { this.bytes = bytes; this.at = 0; }

  byte() {
    if (this.at >= this.bytes.length) throw new Error('frame ends early');
    return this.bytes[this.at++];
  }

  mapHeader() {
    const h = this.byte();
    if ((h & 0xf0) === 0x80) return h & 0x0f;
    if (h === 0xde) return this.uint(2);
    if (h === 0xdf) return this.uint(4);
    throw new Error(`expected a map at byte ${this.at - 1}`);
  }

  arrayHeader() {
    const h = this.byte();
    if ((h & 0xf0) === 0x90) return h & 0x0f;
    if (h === 0xdc) return this.uint(2);
    if (h === 0xdd) return this.uint(4);
    throw new Error(`expected an array at byte ${this.at - 1}`);
  }

  uint(n) {
    let value = 0;
    for (let i = 0; i < n; i++) value = value * 256 + this.byte();
    return value;
  }

  strBounds() {
    const h = this.byte();
    let length;
    if ((h & 0xe0) === 0xa0) length = h & 0x1f;
    else if (h === 0xd9) length = this.uint(1);
    else if (h === 0xda) length = this.uint(2);
    else if (h === 0xdb) length = this.uint(4);
    else throw new Error(`expected a string at byte ${this.at - 1}`);
    const start = this.at;
    this.at += length;
    if (this.at > this.bytes.length) throw new Error('frame ends early');
    return { start, end: this.at };
  }

  str() {
    const { start, end } = this.strBounds();
    return this.bytes.toString('utf8', start, end);
  }

  number() {
    const h = this.byte();
    if (h <= 0x7f) return h;
    if (h >= 0xe0) return h - 0x100;
    const view = this.bytes;
    const at = this.at;
    const sizes = { 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8, 0xca: 4, 0xcb: 8 };
    const size = sizes[h];
    if (size === undefined) throw new Error(`expected a number at byte ${at - 1}`);
    this.at += size;
    if (this.at > view.length) throw new Error('frame ends early');
    if (h === 0xca) return view.readFloatBE(at);
    if (h === 0xcb) return view.readDoubleBE(at);
    if (h === 0xcf) return Number(view.readBigUInt64BE(at));
    if (h === 0xd3) return Number(view.readBigInt64BE(at));
    return h >= 0xd0 ? view.readIntBE(at, size) : view.readUIntBE(at, size);
  }

  skip() {
    const h = this.bytes[this.at];
    if (h <= 0x7f || h >= 0xe0 || h === 0xc0 || h === 0xc2 || h === 0xc3) { this.at++; return; }
    if ((h & 0xe0) === 0xa0 || (h >= 0xd9 && h <= 0xdb)) { this.strBounds(); return; }
    if ((h & 0xf0) === 0x90 || h === 0xdc || h === 0xdd) { for (let n = this.arrayHeader(); n > 0; n--) this.skip(); return; }
    if ((h & 0xf0) === 0x80 || h === 0xde || h === 0xdf) { for (let n = this.mapHeader(); n > 0; n--) { this.skip(); this.skip(); } return; }
    if (h >= 0xc4 && h <= 0xc6) {
      this.at++;
      const length = this.uint(h === 0xc4 ? 1 : h === 0xc5 ? 2 : 4);
      this.at += length;
      return;
    }
    this.number();
  }
}
