/**
 * The one owner of encodings: client frames (msgpack, or JSON for the debugging subprotocol), bus
 * messages and stored records. Plain msgpack maps only (`useRecords: false`), so any msgpack
 * library can read what we write.
 */
import { Packr } from 'msgpackr';
import { fail } from '../errors.js';
import type { WireFormat } from '../protocol/frames.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true, int64AsType: 'number' });
const textDecoder = new TextDecoder('utf-8', { fatal: true });

export function encodeMsgpack(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes msgpack; throws BadFrameError on bytes that are not exactly one msgpack value. */
export function decodeMsgpack(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (error) {
    throw fail.bad_frame(`not valid msgpack: ${(error as Error).message.slice(0, 80)}`);
  }
}

export function encodeJson(value: unknown): string {
  return JSON.stringify(value);
}

export function decodeJson(bytes: Uint8Array | string): unknown {
  try {
    return JSON.parse(typeof bytes === 'string' ? bytes : textDecoder.decode(bytes));
  } catch (error) {
    throw fail.bad_frame(`not valid JSON: ${(error as Error).message.slice(0, 80)}`);
  }
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
