/**
 * Every failure Roomcast reports to a client has one stable code. This module is the one table that
 * maps each code to its wire text, its HTTP status and, where the failure ends the connection, the
 * WebSocket close code. A test checks the table (unique codes, close codes in the application range).
 */

export const ERROR_TABLE = {
  bad_frame: { http: 400, message: 'the frame could not be decoded or has the wrong shape' },
  unknown_type: { http: 400, message: 'the frame type is not known' },
  frame_too_large: { http: 413, close: 1009, message: 'the frame is larger than the limit' },
  text_too_long: { http: 400, message: 'the text is longer than the limit' },
  bad_request: { http: 400, message: 'the request is malformed' },
  bad_room: { http: 400, message: 'the room id is not valid' },
  unauthorized: { http: 401, close: 4001, message: 'a valid token is required' },
  forbidden: { http: 403, message: 'the role may not do this' },
  unknown_room: { http: 404, message: 'the room does not exist' },
  not_found: { http: 404, message: 'not found' },
  method_not_allowed: { http: 405, message: 'the method is not allowed on this endpoint' },
  unsupported_media_type: { http: 415, message: 'the request body must be JSON' },
  not_in_room: { http: 409, message: 'the connection has not joined this room' },
  already_in_room: { http: 409, message: 'the connection is already in this room' },
  too_many_rooms: { http: 409, message: 'the connection is in as many rooms as it may be' },
  rate_limited: { http: 429, message: 'too many messages; slow down' },
  slow_mode: { http: 429, message: 'the room is in slow mode; wait before sending again' },
  muted: { http: 403, message: 'the user is muted in this room' },
  banned: { http: 403, message: 'the user is banned from this room' },
  too_many_errors: { http: 400, close: 4000, message: 'too many bad frames on this connection' },
  idle_timeout: { http: 408, close: 4008, message: 'no traffic within the idle timeout' },
  slow_consumer: { http: 503, close: 4009, message: 'the connection could not keep up with its rooms' },
  unavailable: { http: 503, message: 'the service is unavailable; try again' },
  overloaded: { http: 503, message: 'the service is overloaded; retry after retryAfterMs' },
  timeout: { http: 504, message: 'the service did not answer in time; try again' },
  draining: { http: 503, close: 1012, message: 'the gateway is restarting; reconnect' },
  internal: { http: 500, close: 1011, message: 'internal error' },
  bad_group: { http: 400, message: 'the group id is not valid' },
  blocked: { http: 403, message: 'the recipient does not accept messages from this user' },
  unknown_group: { http: 404, message: 'the group does not exist' },
  not_group_member: { http: 403, message: 'the user is not a member of this group' },
  group_exists: { http: 409, message: 'a group with this id exists already' },
  device_replaced: { http: 409, close: 4010, message: 'a newer login of the same device type replaced this connection' },
} as const satisfies Record<string, { http: number; close?: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_TABLE, value);
}

/** The WebSocket close code for errors that end a connection, or undefined for errors that do not. */
export function closeCodeOf(code: ErrorCode): number | undefined {
  const entry = ERROR_TABLE[code];
  return 'close' in entry ? entry.close : undefined;
}

export function httpStatusOf(code: ErrorCode): number {
  return ERROR_TABLE[code].http;
}

/** A failure with a stable code; `message` is for people, `code` is for programs. */
export class RoomcastError extends Error {
  override readonly name: string = 'RoomcastError';
  readonly code: ErrorCode;
  /** For `overloaded`: how long to wait before retrying, in ms. */
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message: string = ERROR_TABLE[code].message, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(message, options);
    this.code = code;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** The decoded frame or request does not have the shape the protocol requires. */
export class BadFrameError extends RoomcastError {
  override readonly name = 'BadFrameError';
  constructor(message: string) {
    super('bad_frame', message);
  }
}

/** The token is missing, malformed, expired or not signed by a trusted key. */
export class UnauthorizedError extends RoomcastError {
  override readonly name = 'UnauthorizedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('unauthorized', message, options);
  }
}

/** Configuration problems, all of them at once. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

const ID_PATTERN_TEXT = '/^[A-Za-z0-9_-]{1,64}$/';
const LONE_SURROGATES = /\p{Cs}/gu;

/**
 * Client input quoted in a message: cut to `maxUnits` UTF-16 units, with a surrogate pair the cut
 * splits (or a lone surrogate the input held) replaced by U+FFFD, so that it encodes as UTF-8.
 */
export function excerpt(text: string, maxUnits: number): string {
  return text.slice(0, maxUnits).replace(LONE_SURROGATES, '\uFFFD');
}
type Cause = { cause?: unknown };

/**
 * Every error Roomcast reports is built here, each code by one factory holding its message template,
 * so the same failure reads the same wherever it happens. `message` is for people; clients switch
 * on `code` (docs/protocol.md, section 7, lists the same codes; a test keeps the two equal).
 */
export const fail = {
  bad_frame: (detail: string) => new BadFrameError(detail),
  unknown_type: (type: string) => new RoomcastError('unknown_type', `unknown frame type '${excerpt(type, 32)}'`),
  frame_too_large: (limitBytes: number) => new RoomcastError('frame_too_large', `the frame or body is larger than ${limitBytes} bytes`),
  text_too_long: (maxChars: number) => new RoomcastError('text_too_long', `the text is longer than ${maxChars} characters`),
  bad_request: (detail: string) => new RoomcastError('bad_request', detail),
  bad_room: (field = 'room') => new RoomcastError('bad_room', `'${field}' must match ${ID_PATTERN_TEXT}`),
  unauthorized: (detail: string, options?: Cause) => new UnauthorizedError(detail, options),
  forbidden: (detail: string) => new RoomcastError('forbidden', detail),
  unknown_room: (room: string) => new RoomcastError('unknown_room', `room '${room}' does not exist`),
  not_found: (what: string) => new RoomcastError('not_found', what),
  method_not_allowed: (method: string | undefined, allowed: readonly string[]) =>
    new RoomcastError('method_not_allowed', `${method ?? 'this method'} is not allowed here; use ${allowed.join(', ')}`),
  unsupported_media_type: () => new RoomcastError('unsupported_media_type', 'send the body as Content-Type: application/json'),
  not_in_room: (room: string) => new RoomcastError('not_in_room', `not in room '${room}'; join it first`),
  already_in_room: (room: string) => new RoomcastError('already_in_room', `already in room '${room}'`),
  too_many_rooms: (maxRooms: number) => new RoomcastError('too_many_rooms', `at most ${maxRooms} rooms per connection`),
  rate_limited: (what: 'messages' | 'frames' = 'messages') => new RoomcastError('rate_limited', `too many ${what}; slow down`),
  slow_mode: (room: string, retryAfterMs?: number) => new RoomcastError('slow_mode', `room '${room}' is in slow mode; wait before sending again`,
    retryAfterMs === undefined ? undefined : { retryAfterMs }),
  muted: (room: string) => new RoomcastError('muted', `you are muted in room '${room}'`),
  banned: (room: string) => new RoomcastError('banned', `you are banned from room '${room}'`),
  too_many_errors: (badFrames: number) => new RoomcastError('too_many_errors', `${badFrames} bad frames; closing`),
  idle_timeout: (silentS: number) => new RoomcastError('idle_timeout', `nothing arrived for ${silentS} s; closing`),
  slow_consumer: () => new RoomcastError('slow_consumer', ERROR_TABLE.slow_consumer.message),
  unavailable: (detail: string, options?: Cause) => new RoomcastError('unavailable', detail, options),
  overloaded: (retryAfterMs: number) =>
    new RoomcastError('overloaded', `the service is overloaded; retry after ${retryAfterMs} ms`, { retryAfterMs }),
  timeout: (detail: string) => new RoomcastError('timeout', detail),
  draining: () => new RoomcastError('draining', ERROR_TABLE.draining.message),
  internal: (detail: string = ERROR_TABLE.internal.message, options?: Cause) => new RoomcastError('internal', detail, options),
  bad_group: () => new RoomcastError('bad_group', `the group id must match ${ID_PATTERN_TEXT}`),
  blocked: (uid: string) => new RoomcastError('blocked', `'${uid}' does not accept your messages`),
  unknown_group: (group: string) => new RoomcastError('unknown_group', `group '${group}' does not exist`),
  not_group_member: (group: string) => new RoomcastError('not_group_member', `you are not a member of group '${group}'`),
  group_exists: (group: string) => new RoomcastError('group_exists', `group '${group}' exists already`),
  device_replaced: () => new RoomcastError('device_replaced', ERROR_TABLE.device_replaced.message),
} as const satisfies { readonly [C in ErrorCode]: (...args: never[]) => RoomcastError };

/** The error a remote process answered with (its code and message came over the bus). */
export function errorFromWire(code: unknown, message: string, retryAfterMs?: number): RoomcastError {
  return new RoomcastError(isErrorCode(code) ? code : 'internal', message, retryAfterMs === undefined ? undefined : { retryAfterMs });
}

/** Turns anything thrown into a RoomcastError, keeping the original as the cause. */
export function toRoomcastError(error: unknown): RoomcastError {
  if (error instanceof RoomcastError) return error;
  return fail.internal(undefined, { cause: error });
}
