/** The gateway's side of the room service's request subjects, each timed by operation. */
import type { Bus } from '../shared/bus/bus.js';
import { call } from '../shared/bus/rpc.js';
import type { GatewayMetrics, GatewayRequestOp } from '../shared/metrics.js';
import {
  subjects,
  type AccessReply, type AccessRequest, type Caller, type HistoryReply, type HistoryRequest, type ModerateReply, type ModerateRequest,
  type SendBatchReply, type SendBatchRequest, type SendReply, type SendRequest,
} from '../shared/protocol/bus-messages.js';
import type { ClientMsgId, MessageKind, ModerateFrame, RoomId, Seq } from '../shared/protocol/frames.js';
import { RequestBatcher, type RequestBatcherSettings } from './request-batcher.js';

export interface HistoryQuery { afterSeq?: Seq; beforeSeq?: Seq; limit: number }

/** Times one request into roomcast_gateway_request_seconds{op}, whether it succeeds or fails. */
export async function timedCall<Req, Res>(
  metrics: Pick<GatewayMetrics, 'requestTimer'>, op: GatewayRequestOp, bus: Bus, subject: string, request: Req, timeoutMs: number,
): Promise<Res> {
  const done = metrics.requestTimer(op);
  try {
    return await call<Req, Res>(bus, subject, request, timeoutMs);
  } finally {
    done();
  }
}

export class RoomClient {
  private readonly sends: RequestBatcher<SendRequest, SendReply>;

  constructor(
    private readonly bus: Bus,
    private readonly timeoutMs: number,
    private readonly metrics: Pick<GatewayMetrics, 'requestTimer'>,
    sendBatching: RequestBatcherSettings,
  ) {
    this.sends = new RequestBatcher(
      async (sends) => (await timedCall<SendBatchRequest, SendBatchReply>(metrics, 'send', bus, subjects.roomSend, { sends }, timeoutMs)).results,
      sendBatching,
    );
  }

  /** The room's bans in force; rejects with unknown_room when there is no such room. */
  access(room: RoomId): Promise<AccessReply> {
    return timedCall<AccessRequest, AccessReply>(this.metrics, 'access', this.bus, subjects.roomAccess, { room }, this.timeoutMs);
  }

  /** Goes out with the other sends of its window (RequestBatcher); answered on its own. */
  send(caller: Caller, room: RoomId, cid: ClientMsgId, text: string, kind: MessageKind): Promise<SendReply> {
    return this.sends.submit({ caller, room, cid, text, kind });
  }

  /** The room service decides whether the caller may; the answer is the `moderated` frame. */
  moderate(caller: Caller, frame: ModerateFrame): Promise<ModerateReply> {
    return timedCall<ModerateRequest, ModerateReply>(this.metrics, 'moderate', this.bus, subjects.roomModerate, { caller, frame }, this.timeoutMs);
  }

  /** Without a caller: the gateway reading a room's stream for itself. */
  history(room: RoomId, query: HistoryQuery, caller?: Caller): Promise<HistoryReply> {
    const request: HistoryRequest = { room, ...query, ...(caller ? { caller } : {}) };
    return timedCall<HistoryRequest, HistoryReply>(this.metrics, 'history', this.bus, subjects.roomHistory, request, this.timeoutMs);
  }
}
