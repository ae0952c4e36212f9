/**
 * Redis Cluster hash slots, computed here so that a key can be named into the slot of another key:
 * a per-slot outbox must live in the slot of the conversation whose send script writes it. The same
 * names are used on a single Redis, where slots do not matter, so both run the same code.
 */

export const SLOT_COUNT = 16384;

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
})();

/** CRC16-CCITT (XMODEM), as Redis Cluster hashes keys. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/** The slot of a hash tag's content (the part between `{` and `}` of a key). */
export function slotOfTag(tag: string): number {
  return crc16(Buffer.from(tag, 'utf8')) % SLOT_COUNT;
}

let tagsBySlot: string[] | undefined;

/**
 * A short tag for each slot (`tags[slot]` hashes to `slot`): the first of "0", "1", "2", ... (in
 * base 36) that lands there, the same in every process. Computed once, in some tens of milliseconds.
 */
export function slotTags(): readonly string[] {
  if (tagsBySlot) return tagsBySlot;
  const tags = new Array<string>(SLOT_COUNT);
  let found = 0;
  for (let n = 0; found < SLOT_COUNT; n++) {
    const tag = n.toString(36);
    const slot = slotOfTag(tag);
    if (tags[slot] === undefined) {
      tags[slot] = tag;
      found++;
    }
  }
  tagsBySlot = tags;
  return tags;
}
