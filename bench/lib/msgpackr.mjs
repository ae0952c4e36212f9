/** The harness's one msgpack codec (plain maps, as the gateway writes and reads them). */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true, int64AsType: 'number' });

/** @param {unknown} value @returns {Buffer} */
export function encode(value) {
  return packr.pack(value);
}

/** @param {Uint8Array} bytes */
export function decode(bytes) {
  return packr.unpack(bytes);
}
