/**
 * The notices moderation sends: `code` and its fields for programs, `text` for people. Room-wide
 * ones (slow mode, pins) go to the room's viewers; mute notices to the muted user alone.
 */
import type { NoticeFrame, RoomId, Uid } from '../shared/protocol/frames.js';

export function slowModeNotice(room: RoomId, intervalMs: number): NoticeFrame {
  const text = intervalMs === 0 ? 'Slow mode is off' : `Slow mode is on: one message every ${describeInterval(intervalMs)}`;
  return { t: 'notice', code: 'slow_mode', room, intervalMs, text };
}

export function pinnedNotice(room: RoomId, by: Uid): NoticeFrame {
  return { t: 'notice', code: 'pinned', room, text: `${by} pinned a message` };
}

export function unpinnedNotice(room: RoomId, by: Uid): NoticeFrame {
  return { t: 'notice', code: 'unpinned', room, text: `${by} unpinned the pinned message` };
}

export function mutedNotice(room: RoomId, untilMs: number): NoticeFrame {
  return { t: 'notice', code: 'muted', room, untilMs, text: `You are muted in this room until ${new Date(untilMs).toISOString()}` };
}

export function unmutedNotice(room: RoomId): NoticeFrame {
  return { t: 'notice', code: 'unmuted', room, text: 'You are no longer muted in this room' };
}

/** "10 seconds", "1 minute", "1500 ms": whole minutes and seconds in words, the rest in ms. */
export function describeInterval(intervalMs: number): string {
  const plural = (count: number, unit: string) => `${count} ${unit}${count === 1 ? '' : 's'}`;
  if (intervalMs % 60_000 === 0) return plural(intervalMs / 60_000, 'minute');
  if (intervalMs % 1000 === 0) return plural(intervalMs / 1000, 'second');
  return `${intervalMs} ms`;
}
