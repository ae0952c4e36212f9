/**
 * Reads just enough of a msgpack `messages` frame to count its messages without decoding them: the
 * map's `t` and the header of its `msgs` array. Optionally walks the array to read each message's
 * first-key `seq` (room messages start with `seq`), still without building any object.
 *
 * Anything it does not expect (another key order, an extension type) makes it answer UNKNOWN, and
 * the caller decodes the frame fully instead.
 */

/** Not a messages frame (another `t`). */
export const NOT_MESSAGES = -1;
/** The peek could not tell: decode the whole frame. */
export const UNKNOWN = -2;

const T_KEY = 0x74; // 't'
const MESSAGES = Buffer.from('messages');
const MSGS = Buffer.from('msgs');

/** Byte comparison in JS: cheaper than Buffer#compare's native call for a few bytes. */
function bytesEqual(b, start, end, expected) {
  if (end - start !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (b[start + i] !== expected[i]) return false;
  return true;
}

/** Filled by peekMessages when asked for seqs: the first and last seq of the frame, and holes inside it. */
export const seqResult = { first: 0, last: 0, holes: 0, ordered: true };

let pos = 0;

/**
 * @param {Buffer} b a whole msgpack frame
 * @param {boolean} readSeqs also fill `seqResult` (walks every message)
 * @returns {number} the number of messages, NOT_MESSAGES or UNKNOWN
 */
export function peekMessages(b, readSeqs) {
  pos = 0;
  const size = mapHeader(b);
  if (size < 0) return UNKNOWN;
  let sawMessagesType = false;
  for (let i = 0; i < size; i++) {
    const keyStart = strHeader(b);
    if (keyStart < 0) return UNKNOWN;
    const keyLength = pos - keyStart;
    if (keyLength === 1 && b[keyStart] === T_KEY) {
      const valueStart = strHeader(b);
      if (valueStart < 0) return UNKNOWN;
      if (!bytesEqual(b, valueStart, pos, MESSAGES)) return NOT_MESSAGES;
      sawMessagesType = true;
    } else if (keyLength === 4 && bytesEqual(b, keyStart, pos, MSGS)) {
      if (!sawMessagesType) return UNKNOWN;
      const count = arrayHeader(b);
      if (count < 0) return UNKNOWN;
      if (readSeqs && !readMessageSeqs(b, count)) return UNKNOWN;
      return count;
    } else if (!skip(b)) {
      return UNKNOWN;
    }
  }
  return UNKNOWN;
}

function readMessageSeqs(b, count) {
  seqResult.first = 0; seqResult.last = 0; seqResult.holes = 0; seqResult.ordered = true;
  let previous = 0;
  for (let i = 0; i < count; i++) {
    const fields = mapHeader(b);
    if (fields < 1) return false;
    const keyStart = strHeader(b);
    if (keyStart < 0 || pos - keyStart !== 3 || b[keyStart] !== 0x73 || b[keyStart + 1] !== 0x65 || b[keyStart + 2] !== 0x71) return false;
    const seq = readNumber(b);
    if (Number.isNaN(seq)) return false;
    for (let f = 1; f < fields; f++) if (!skip(b) || !skip(b)) return false;
    if (i === 0) seqResult.first = seq;
    else if (seq > previous + 1) seqResult.holes += seq - previous - 1;
    else if (seq <= previous) seqResult.ordered = false;
    previous = seq;
  }
  seqResult.last = previous;
  return true;
}

function mapHeader(b) {
  const h = b[pos++];
  if ((h & 0xf0) === 0x80) return h & 0x0f;
  if (h === 0xde) { pos += 2; return b.readUInt16BE(pos - 2); }
  if (h === 0xdf) { pos += 4; return b.readUInt32BE(pos - 4); }
  return -1;
}

function arrayHeader(b) {
  const h = b[pos++];
  if ((h & 0xf0) === 0x90) return h & 0x0f;
  if (h === 0xdc) { pos += 2; return b.readUInt16BE(pos - 2); }
  if (h === 0xdd) { pos += 4; return b.readUInt32BE(pos - 4); }
  return -1;
}

/** Reads a string header and moves past the string; returns where its bytes start, or -1. */
function strHeader(b) {
  const h = b[pos++];
  let length;
  if ((h & 0xe0) === 0xa0) length = h & 0x1f;
  else if (h === 0xd9) length = b[pos++];
  else if (h === 0xda) { length = b.readUInt16BE(pos); pos += 2; }
  else if (h === 0xdb) { length = b.readUInt32BE(pos); pos += 4; }
  else return -1;
  const start = pos;
  pos += length;
  return start;
}

function readNumber(b) {
  const h = b[pos++];
  if (h <= 0x7f) return h;
  if (h >= 0xe0) return h - 256;
  switch (h) {
    case 0xcc: pos += 1; return b[pos - 1];
    case 0xcd: pos += 2; return b.readUInt16BE(pos - 2);
    case 0xce: pos += 4; return b.readUInt32BE(pos - 4);
    case 0xcf: pos += 8; return Number(b.readBigUInt64BE(pos - 8));
    case 0xd0: pos += 1; return b.readInt8(pos - 1);
    case 0xd1: pos += 2; return b.readInt16BE(pos - 2);
    case 0xd2: pos += 4; return b.readInt32BE(pos - 4);
    case 0xd3: pos += 8; return Number(b.readBigInt64BE(pos - 8));
    case 0xca: pos += 4; return b.readFloatBE(pos - 4);
    case 0xcb: pos += 8; return b.readDoubleBE(pos - 8);
    default: return Number.NaN;
  }
}

/** Moves past one value of any standard type; false for extension types or truncated input. */
function skip(b) {
  if (pos >= b.length) return false;
  const h = b[pos++];
  if (h <= 0x7f || h >= 0xe0 || h === 0xc0 || h === 0xc2 || h === 0xc3) return true;
  if ((h & 0xe0) === 0xa0) { pos += h & 0x1f; return pos <= b.length; }
  if ((h & 0xf0) === 0x90) return skipMany(b, h & 0x0f);
  if ((h & 0xf0) === 0x80) return skipMany(b, 2 * (h & 0x0f));
  switch (h) {
    case 0xcc: case 0xd0: pos += 1; return true;
    case 0xcd: case 0xd1: pos += 2; return true;
    case 0xce: case 0xd2: case 0xca: pos += 4; return true;
    case 0xcf: case 0xd3: case 0xcb: pos += 8; return true;
    case 0xd9: case 0xc4: pos += 1 + b[pos]; return pos <= b.length;
    case 0xda: case 0xc5: pos += 2 + b.readUInt16BE(pos); return pos <= b.length;
    case 0xdb: case 0xc6: pos += 4 + b.readUInt32BE(pos); return pos <= b.length;
    case 0xdc: pos += 2; return skipMany(b, b.readUInt16BE(pos - 2));
    case 0xdd: pos += 4; return skipMany(b, b.readUInt32BE(pos - 4));
    case 0xde: pos += 2; return skipMany(b, 2 * b.readUInt16BE(pos - 2));
    case 0xdf: pos += 4; return skipMany(b, 2 * b.readUInt32BE(pos - 4));
    default: return false;
  }
}

function skipMany(b, count) {
  for (let i = 0; i < count; i++) if (!skip(b)) return false;
  return true;
}
