/**
 * The gateway's side of private and group chat: forwards a connection's chat frames to the room
 * service on `svc.chat.<op>`, the frames of one op and one short window in one request (the session
 * writes each answer or error); asks for the login push when a connection opens. No decisions here:
 * the room service makes them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Bus } from '../shared/bus/bus.js';
import { encodeFrame } from '../shared/codec/codec.js';
import type { Logger } from '../shared/log.js';
import type { GatewayMetrics } from '../shared/metrics.js';
import { subjects, type GatewayId } from '../shared/protocol/bus-messages.js';
import type {
  ChatBatchReply, ChatBatchRequest, ChatCaller, ChatLoginsReply, ChatLoginsRequest, ChatReply, ChatRequest,
} from '../shared/protocol/chat-bus-messages.js';
import { CHAT_OPS, CHAT_REQUESTS, type ChatClientFrame, type ChatOp } from '../shared/protocol/chat-frames.js';
import type { ServerFrame } from '../shared/protocol/frames.js';
import { RequestBatcher, type RequestBatcherSettings } from './request-batcher.js';
import { timedCall } from './room-client.js';
import type { Conn } from './uws-server.js';

export interface ChatClientDeps {
  gatewayId: GatewayId;
  bus: Bus;
  log: Logger;
  metrics: GatewayMetrics;
  requestTimeoutMs: number;
  /** How the frames of one op are coalesced into requests. */
  batching: RequestBatcherSettings;
}

/** A connection the registry holds since `connectedAtMs`. */
export interface OpenedConn { conn: Conn; connectedAtMs: number }

/** Logins per request: bounds a request's size and the room service's work for one message. */
export const LOGINS_PER_REQUEST = 500;
/** A failed batch of logins is asked again once, this much later. */
export const LOGIN_RETRY_MS = 1000;

export class ChatClient {
  private readonly batchers: ReadonlyMap<ChatOp, RequestBatcher<ChatRequest, ChatReply>>;

  constructor(private readonly deps: ChatClientDeps) {
    const { metrics, bus, requestTimeoutMs, batching } = deps;
    this.batchers = new Map(CHAT_OPS.map((op) => [op, new RequestBatcher<ChatRequest, ChatReply>(
      async (requests) => (await timedCall<ChatBatchRequest, ChatBatchReply>(metrics, `chat_${op}`, bus, subjects.chat(op), { requests }, requestTimeoutMs)).results,
      batching,
    )]));
  }

  /** Forwards a checked chat frame; resolves with the answer for the client, if it gets one. */
  async forward(conn: Conn, frame: ChatClientFrame): Promise<ServerFrame | null> {
    const reply = await this.batchers.get(CHAT_REQUESTS[frame.t].op)!.submit({ caller: this.callerOf(conn), frame });
    return (reply.frame as ServerFrame | undefined) ?? null;
  }

  /**
   * The device policy and the login push of newest unacknowledged messages, for connections opened
   * together: one request per LOGINS_PER_REQUEST. `connectedAtMs` is the time the registry holds
   * for each connection: the policy compares it. A batch that fails (or a login in it) is asked once
   * more after LOGIN_RETRY_MS for the connections still open: the push is what starts a client's
   * sync, and a failed batch would otherwise cost it to many clients at once. Both steps are
   * idempotent (clients drop pushed messages they have by id).
   */
  async logins(opened: readonly OpenedConn[]): Promise<void> {
    const requests: Promise<void>[] = [];
    for (let i = 0; i < opened.length; i += LOGINS_PER_REQUEST) requests.push(this.loginChunk(opened.slice(i, i + LOGINS_PER_REQUEST), true));
    await Promise.all(requests);
  }

  private async loginChunk(opened: readonly OpenedConn[], retry: boolean): Promise<void> {
    const request: ChatLoginsRequest = { logins: opened.map(({ conn, connectedAtMs }) => ({ caller: this.callerOf(conn), connectedAtMs })) };
    let failed: OpenedConn[];
    let error: unknown = null;
    try {
      const reply = await timedCall<ChatLoginsRequest, ChatLoginsReply>(
        this.deps.metrics, 'chat_logins', this.deps.bus, subjects.chat('logins'), request, this.deps.requestTimeoutMs);
      failed = [];
      opened.forEach((login, i) => {
        const frame = reply.frames?.[i];
        if (login.conn.closed) return;
        if (frame) login.conn.send(encodeFrame(login.conn.format, frame as ServerFrame));
        else failed.push(login);
      });
    } catch (caught) {
      this.deps.metrics.busError();
      error = caught;
      failed = opened.filter(({ conn }) => !conn.closed);
    }
    if (failed.length === 0) return;
    if (!retry) {
      this.deps.log.warn('chat logins failed twice; those clients get no login push', { connections: failed.length, error });
      return;
    }
    await sleep(LOGIN_RETRY_MS);
    const open = failed.filter(({ conn }) => !conn.closed);
    if (open.length > 0) await this.loginChunk(open, false);
  }

  private callerOf(conn: Conn): ChatCaller {
    const { uid, role, device } = conn.identity;
    return { uid, role, device, gatewayId: this.deps.gatewayId, connId: conn.id };
  }
}
