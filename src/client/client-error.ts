/**
 * The error every promise of the SDK rejects with: the server's error code when the server refused
 * the request, or a code the client chose for failures it saw itself (`unavailable` when the
 * connection was lost or the client closed, `timeout` when no answer came in time, `bad_room` /
 * `bad_request` for arguments it would not send, `frame_too_large` for a frame over the server's limit).
 */
import { ERROR_TABLE, RoomcastError, type ErrorCode } from '../shared/errors.js';
import type { ClientMsgId, ErrorFrame, RoomId } from '../shared/protocol/frames.js';

export class ClientError extends RoomcastError {
  override readonly name = 'ClientError';
  /** The room the failed request was about, when it was about one. */
  readonly room: RoomId | undefined;
  /** The clientMsgId of the failed send. */
  readonly id: ClientMsgId | undefined;

  constructor(code: ErrorCode, message: string = ERROR_TABLE[code]?.message ?? code, context: { room?: RoomId; id?: ClientMsgId; cause?: unknown; retryAfterMs?: number } = {}) {
    super(code, message, { cause: context.cause, retryAfterMs: context.retryAfterMs });
    this.room = context.room;
    this.id = context.id;
  }

  /** The error a server error frame stands for. */
  static fromFrame(frame: ErrorFrame): ClientError {
    const context: { room?: RoomId; id?: ClientMsgId; retryAfterMs?: number } = {};
    if (frame.room !== undefined) context.room = frame.room;
    if (frame.id !== undefined) context.id = frame.id;
    if (frame.retryAfterMs !== undefined) context.retryAfterMs = frame.retryAfterMs;
    return new ClientError(frame.code, frame.message, context);
  }
}
