/**
 * Duplicate suppression for room messages. Per room the client remembers the highest seq it has
 * delivered; a message at or below it has been delivered already (a rejoin overlapping what was
 * seen, a message both in `joined` and in a batch) or is older than what was delivered, and is
 * dropped. Seqs may skip numbers (sampled chat, a reported gap), so only the order is checked.
 */
import type { RoomId, RoomMessage, Seq } from '../shared/protocol/frames.js';

/**
 * Calls `deliver(room, message)` for each message of `msgs` (in their order) whose seq is above the
 * highest delivered so far, starting from `lastSeq`. Returns the new highest delivered seq.
 */
export function deliverNew(
  room: RoomId,
  msgs: readonly RoomMessage[],
  lastSeq: Seq,
  deliver: (room: RoomId, message: RoomMessage) => void,
): Seq {
  let highest = lastSeq;
  for (const message of msgs) {
    if (!(message.seq > highest)) continue;
    highest = message.seq;
    deliver(room, message);
  }
  return highest;
}
