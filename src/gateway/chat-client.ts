/**
 * The gateway's side of private and group chat: forwards a connection's chat frames to the room
 * service on `svc.chat.<op>` (the session writes the answer or the error); asks for the login push
 * when a connection opens. No decisions here: the room service makes them.
 */
import type { Bus } from '../shared/bus/bus.js';
import { encodeFrame } from '../shared/codec/codec.js';
import type { Logger } from '../shared/log.js';
import type { GatewayMetrics } from '../shared/metrics.js';
import { subjects, type GatewayId } from '../shared/protocol/bus-messages.js';
import type { ChatCaller, ChatLoginRequest, ChatReply, ChatRequest } from '../shared/protocol/chat-bus-messages.js';
import { CHAT_REQUESTS, type ChatClientFrame } from '../shared/protocol/chat-frames.js';
import type { ServerFrame } from '../shared/protocol/frames.js';
import { timedCall } from './room-client.js';
import type { Conn } from './uws-server.js';

export interface ChatClientDeps {
  gatewayId: GatewayId;
  bus: Bus;
  log: Logger;
  metrics: GatewayMetrics;
  requestTimeoutMs: number;
}

export class ChatClient {
  constructor(private readonly deps: ChatClientDeps) {}

  /** Forwards a checked chat frame; resolves with the answer for the client, if it gets one. */
  async forward(conn: Conn, frame: ChatClientFrame): Promise<ServerFrame | null> {
    const request: ChatRequest = { caller: this.callerOf(conn), frame };
    const op = CHAT_REQUESTS[frame.t].op;
    const reply = await timedCall<ChatRequest, ChatReply>(this.deps.metrics, `chat_${op}`, this.deps.bus, subjects.chat(op), request, this.deps.requestTimeoutMs);
    return (reply.frame as ServerFrame | undefined) ?? null;
  }

  /**
   * The device policy and the login push of newest unacknowledged messages; failures only cost the
   * push. `connectedAtMs` is the time the registry holds for this connection: the policy compares it.
   */
  async login(conn: Conn, connectedAtMs: number): Promise<void> {
    const request: ChatLoginRequest = { caller: this.callerOf(conn), connectedAtMs };
    try {
      const reply = await timedCall<ChatLoginRequest, ChatReply>(this.deps.metrics, 'chat_login', this.deps.bus, subjects.chat('login'), request, this.deps.requestTimeoutMs);
      if (reply.frame && !conn.closed) conn.send(encodeFrame(conn.format, reply.frame as ServerFrame));
    } catch (error) {
      // The client syncs on its own after the welcome; the push is only a head start.
      this.deps.metrics.busError();
      this.deps.log.warn('chat login failed', { conn: conn.id, error });
    }
  }

  private callerOf(conn: Conn): ChatCaller {
    const { uid, role, device } = conn.identity;
    return { uid, role, device, gatewayId: this.deps.gatewayId, connId: conn.id };
  }
}
