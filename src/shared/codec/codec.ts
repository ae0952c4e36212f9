/**
 * The one owner of encodings: client frames (msgpack, or JSON for the debugging subprotocol), bus
 * messages and stored records. Plain msgpack maps only (`useRecords: false`), so any msgpack
 * library can read what we write.
 */
import { Packr } from 'msgpackr';
import { excerpt, fail } from '../errors.js';
import type { WireFormat } from '../protocol/frames.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true, int64AsType: 'number' });
const textDecoder = new TextDecoder('utf-8', { fatal: true });
const ERROR_EXCERPT_UNITS = 80;
const LONE_SURROGATE = /\p{Cs}/u;

export function encodeMsgpack(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes msgpack; throws BadFrameError on bytes that are not exactly one msgpack value. */
export function decodeMsgpack(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (error) {
    throw fail.bad_frame(`not valid msgpack: ${excerpt((error as Error).message, ERROR_EXCERPT_UNITS)}`);
  }
}

export function encodeJson(value: unknown): string {
  return JSON.stringify(value);
}

/**
 * Decodes JSON (UTF-8 bytes, or a string); throws BadFrameError on anything else, and on a string that
 * holds half of a surrogate pair (a lone `\uD800`-`\uDFFF` escape): no UTF-8 encoder can write one,
 * so it would reach msgpack readers of an echo or a stored text as invalid UTF-8.
 */
export function decodeJson(bytes: Uint8Array | string): unknown {
  let text: string;
  let value: unknown;
  try {
    text = typeof bytes === 'string' ? bytes : textDecoder.decode(bytes);
    value = JSON.parse(text);
  } catch (error) {
    throw fail.bad_frame(`not valid JSON: ${excerpt((error as Error).message, ERROR_EXCERPT_UNITS)}`);
  }
  if ((text.includes('\\u') || LONE_SURROGATE.test(text)) && holdsLoneSurrogate(value)) {
    throw fail.bad_frame('not valid JSON: a string holds half of a surrogate pair');
  }
  return value;
}

/** Whether any string or key in a parsed JSON value holds a lone surrogate; iterative, as values nest deep. */
function holdsLoneSurrogate(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const item = pending.pop();
    if (typeof item === 'string') {
      if (LONE_SURROGATE.test(item)) return true;
    } else if (typeof item === 'object' && item !== null) {
      for (const [key, child] of Object.entries(item)) {
        if (LONE_SURROGATE.test(key)) return true;
        pending.push(child);
      }
    }
  }
  return false;
}

/** Encodes a client frame in the connection's wire format. */
export function encodeFrame(format: WireFormat, frame: unknown): Uint8Array | string {
  return format === 'msgpack' ? encodeMsgpack(frame) : encodeJson(frame);
}

export function decodeFrame(format: WireFormat, bytes: Uint8Array): unknown {
  return format === 'msgpack' ? decodeMsgpack(bytes) : decodeJson(bytes);
}

/** Bus messages and stored records use msgpack too; named separately so call sites say what they carry. */
export const encodeBusMessage = encodeMsgpack;
export const decodeBusMessage = decodeMsgpack;
export const encodeRecord = encodeMsgpack;
export const decodeRecord = decodeMsgpack;
