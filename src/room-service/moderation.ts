/**
 * Moderation requests over the bus (`svc.room.moderate`): a moderator's `moderate` frame, forwarded
 * by its gateway, checked again here (the bus is a process boundary) and applied with the same
 * permission check (canModerate), the same value rules and the same RoomService methods as the HTTP
 * API, so that the console gets the same answers either way.
 */
import { canModerate, isUid } from '../shared/auth.js';
import { fail } from '../shared/errors.js';
import type { Caller, ModerateReply, ModerateRequest } from '../shared/protocol/bus-messages.js';
import { ROLES, isRoomId, parseClientFrame, type ModerateFrame, type Seq, type Uid } from '../shared/protocol/frames.js';
import type { RoomService } from './room-service.js';

/** Longest mute or ban, and the default when no duration is given: a year. */
export const MAX_MODERATION_MS = 365 * 24 * 3600 * 1000;
/** Longest slow-mode interval: an hour. */
export const MAX_SLOW_MODE_MS = 3_600_000;

/** A uid named by a moderator; bad_request otherwise. */
export function requireModeratedUid(value: unknown): Uid {
  if (value === undefined) throw fail.bad_request("'uid' is required");
  if (!isUid(value)) throw fail.bad_request('the uid is not valid');
  return value;
}

/** A mute or ban lasts `durationMs` (1 ms to a year), or a year when it is not given. */
export function moderationDuration(value: unknown): number {
  if (value === undefined || value === null) return MAX_MODERATION_MS;
  return requireIntegerIn(value, 'durationMs', 1, MAX_MODERATION_MS);
}

/** A slow-mode interval, 0 (off) to an hour; required. */
export function slowModeInterval(value: unknown): number {
  if (value === undefined || value === null) throw fail.bad_request("'intervalMs' is required (0 turns slow mode off)");
  return requireIntegerIn(value, 'intervalMs', 0, MAX_SLOW_MODE_MS);
}

export function requireIntegerIn(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw fail.bad_request(`'${field}' must be an integer from ${min} to ${max}`);
  }
  return value;
}

function requireSeq(value: Seq | undefined): Seq {
  if (value === undefined) throw fail.bad_request("'seq' is required");
  return value;
}

/** Applies a `moderate` frame for its caller and answers the `moderated` frame. */
export async function moderate(service: RoomService, request: ModerateRequest): Promise<ModerateReply> {
  const caller = checkCaller(request?.caller);
  const frame = checkFrame(request?.frame);
  const { room, action } = frame;
  if (!canModerate(caller, room)) throw fail.forbidden(`a ${caller.role} may not moderate room '${room}'`);
  const answer: ModerateReply = { t: 'moderated', id: frame.id, room, action };
  switch (action) {
    case 'mute':
    case 'unmute':
      await service.setMute(room, requireModeratedUid(frame.uid), action === 'mute' ? moderationDuration(frame.durationMs) : null);
      return answer;
    case 'ban':
    case 'unban':
      await service.setBan(room, requireModeratedUid(frame.uid), action === 'ban' ? moderationDuration(frame.durationMs) : null);
      return answer;
    case 'delete':
      return { ...answer, seq: (await service.retract(room, requireSeq(frame.seq), caller.uid)).seq };
    case 'pin':
      return { ...answer, seq: (await service.pin(room, requireSeq(frame.seq), caller.uid)).message.seq };
    case 'unpin':
      return { ...answer, seq: (await service.unpin(room, caller.uid)).seq };
    case 'slow_mode':
      await service.setSlowMode(room, slowModeInterval(frame.intervalMs), caller.uid);
      return answer;
    case 'list':
      return { ...answer, ...(await service.moderationLists(room)) };
  }
}

function checkFrame(value: unknown): ModerateFrame {
  const frame = parseClientFrame(value);
  if (frame.t !== 'moderate') throw fail.bad_frame('not a moderate frame');
  return frame;
}

function checkCaller(value: unknown): Caller {
  const caller = value as Partial<Caller> | undefined;
  if (!caller || !isUid(caller.uid) || !(ROLES as readonly unknown[]).includes(caller.role)
    || (caller.rooms !== undefined && !(Array.isArray(caller.rooms) && caller.rooms.every(isRoomId)))) {
    throw fail.bad_frame('the request needs a caller');
  }
  return caller as Caller;
}
