/** What parseClientFrame makes of a value: 'accepted', or the stable code of the error it throws. */
import type { RoomcastError } from '../../src/shared/errors.js';
import { parseClientFrame } from '../../src/shared/protocol/frames.js';

export function codeOf(value: unknown): string {
  try {
    parseClientFrame(value);
  } catch (error) {
    return (error as RoomcastError).code;
  }
  return 'accepted';
}
