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

  constructor(code: ErrorCode, message: string = ERROR_TABLE[code].message, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
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

/** Turns anything thrown into a RoomcastError, keeping the original as the cause. */
export function toRoomcastError(error: unknown): RoomcastError {
  if (error instanceof RoomcastError) return error;
  return new RoomcastError('internal', ERROR_TABLE.internal.message, { cause: error });
}
