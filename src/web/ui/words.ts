/** What the pages say to people about the server's answers: error codes and durations in words. */
import type { ClientError } from '../../client/roomcast-client.js';

/** A duration in words: "45 seconds", "10 minutes", "2 hours", "3 days". */
export function durationInWords(ms: number): string {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  const unit = (value: number, name: string) => `${value} ${name}${value === 1 ? '' : 's'}`;
  if (seconds < 90) return unit(seconds, 'second');
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return unit(minutes, 'minute');
  const hours = Math.round(minutes / 60);
  if (hours < 48) return unit(hours, 'hour');
  return unit(Math.round(hours / 24), 'day');
}

/** A refused send in words; `slowModeWaitMs` is the wait the page worked out, when it knows slow mode's interval. */
export function sendErrorInWords(error: ClientError, slowModeWaitMs: number | null): string {
  switch (error.code) {
    case 'rate_limited': return 'You are sending too fast: wait a moment, then try again.';
    case 'slow_mode': return slowModeWaitMs !== null && slowModeWaitMs > 0
      ? `Slow mode is on: you can send again in ${durationInWords(slowModeWaitMs)}.`
      : 'Slow mode is on: wait a little before sending again.';
    case 'muted': return 'You are muted in this room: your messages are not sent.';
    case 'banned': return 'You are banned from this room.';
    case 'text_too_long': return 'The message is too long.';
    case 'bad_request': return 'The message is empty.';
    case 'forbidden': return 'Your account may not do this.';
    case 'not_in_room': return 'You are not in the room (yet): try again in a moment.';
    case 'timeout': case 'unavailable': return 'Roomcast did not answer in time: try again.';
    case 'overloaded': return 'Roomcast is very busy right now: try again in a moment.';
    default: return `Not sent: ${error.message}`;
  }
}

/** A refused moderation action (console) in words. */
export function actionErrorInWords(error: { code: string; message: string }): string {
  switch (error.code) {
    case 'forbidden': return 'Your token may not moderate this room.';
    case 'not_found': return 'That message is no longer there.';
    case 'rate_limited': return 'Too many actions at once: wait a moment.';
    case 'timeout': case 'unavailable': return 'Roomcast did not answer in time: try again.';
    case 'overloaded': return 'Roomcast is very busy right now: try again in a moment.';
    default: return error.message;
  }
}
