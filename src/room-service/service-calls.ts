/**
 * What every room-service decision module does the same way: time and count store calls (a failing
 * store answers `unavailable`, a retry), count requests by result code, and check message text.
 */
import { fail, RoomcastError } from '../shared/errors.js';
import type { RoomServiceMetrics } from '../shared/metrics.js';
import type { MessageKind } from '../shared/protocol/frames.js';

/** Runs a store operation, timed; a failing store answers `unavailable` (retry) and is counted. */
export async function storeCall<T>(metrics: RoomServiceMetrics, store: string, op: string, action: () => Promise<T>): Promise<T> {
  const done = metrics.storeTimer(op);
  try {
    return await action();
  } catch (error) {
    metrics.storeError();
    throw fail.unavailable(`the ${store} store is unavailable`, { cause: error });
  } finally {
    done();
  }
}

/** Counts a request by its result: `ok` or the error's code. */
export async function measuredRequest<T>(metrics: RoomServiceMetrics, op: string, work: () => Promise<T>): Promise<T> {
  try {
    const result = await work();
    metrics.request(op, 'ok');
    return result;
  } catch (error) {
    metrics.request(op, error instanceof RoomcastError ? error.code : 'internal');
    throw error;
  }
}

/**
 * One rule for message text, over WebSocket and HTTP alike: a string of at most `max` characters
 * (code points) with a non-blank character, except a gift's, which `data` describes.
 */
export function checkText(text: unknown, max: number, { kind }: { kind: MessageKind } = { kind: 'chat' }): asserts text is string {
  if (typeof text !== 'string') throw fail.bad_request("'text' must be a string");
  if (kind !== 'gift' && text.trim() === '') throw fail.bad_request("'text' must not be empty");
  // Code units bound code points from above, so most texts skip the count.
  if (text.length > max && countCodePoints(text) > max) throw fail.text_too_long(max);
}

function countCodePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}
