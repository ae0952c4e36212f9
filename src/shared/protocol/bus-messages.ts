/**
 * Messages between processes on the bus: a union tagged by `t`, like the client protocol, encoded by
 * the one codec. Subjects are built only here.
 */
import type { ErrorCode } from '../errors.js';
import type {
  ClientMsgId, MessageKind, ModeratedFrame, ModerateFrame, ModerationEntry, NoticeFrame, Role, RoomId, RoomMessage, Seq, Uid,
} from './frames.js';
import type { ChatOp } from './chat-frames.js';

export type GatewayId = string;

export const subjects = {
  /** Everything a room's viewers must see, published once per room by the room service. */
  room: (room: RoomId) => `room.${room}`,
  /** Messages routed to one gateway (per-uid delivery). */
  gateway: (gatewayId: GatewayId) => `gw.${gatewayId}`,
  /** Requests to the room service, answered by one replica of its queue group. */
  /** A room's join rules (exists, bans), asked once per room by a gateway that opens the room. */
  roomAccess: 'svc.room.access',
  roomSend: 'svc.room.send',
  roomHistory: 'svc.room.history',
  /** A moderator's `moderate` frame, forwarded by its gateway. */
  roomModerate: 'svc.room.moderate',
  /** Private and group chat requests from gateways (chat-bus-messages.ts), answered by the queue group. */
  chat: (op: ChatOp | 'logins') => `svc.chat.${op}` as const,
  /** Messages for users with no online device, for an external push worker (chat-bus-messages.ts). */
  pushOffline: 'push.offline',
  /** Fleet state (fleet-messages.ts): a gateway's heartbeat and goodbye, published by that gateway. */
  fleetGateway: (gatewayId: GatewayId) => `fleet.gateway.${gatewayId}`,
  fleetGateways: 'fleet.gateway.*',
  /** A gateway's local viewer counts of all its rooms, one message per interval. */
  fleetViewers: (gatewayId: GatewayId) => `fleet.viewers.${gatewayId}`,
  fleetAllViewers: 'fleet.viewers.*',
  /** Room services → gateways: the fleet-wide viewer totals of the rooms that changed. */
  fleetRoomViewers: 'fleet.rooms.viewers',
} as const;

/** Queue group of the room-service replicas. */
export const ROOM_SERVICE_QUEUE = 'room-service';

// ---- room.<id> ----------------------------------------------------------------------------------

/** Stored, sequenced room messages, in seq order: those of one room service step (a gateway's batch of sends). */
export interface RoomMessageEvent { t: 'msgs'; room: RoomId; ms: RoomMessage[] }
/**
 * A user was banned until `untilMs`: gateways remove that user's connections from the room, and
 * refuse its joins until then (RoomAccess holds the room's bans while the gateway is subscribed).
 */
export interface RoomKickEvent { t: 'kick'; room: RoomId; uid: Uid; reason: 'banned'; untilMs: number }
/** A ban was lifted: gateways let the user join again. */
export interface RoomUnbanEvent { t: 'unban'; room: RoomId; uid: Uid }
/** A notice for every viewer of the room (slow mode, pins): written at once, not sequenced. */
export interface RoomNoticeEvent { t: 'notice'; room: RoomId; notice: NoticeFrame }
export type RoomEvent = RoomMessageEvent | RoomKickEvent | RoomUnbanEvent | RoomNoticeEvent;

// ---- requests to the room service ---------------------------------------------------------------

/** Who is asking, as the gateway authenticated it. */
export interface Caller { uid: Uid; role: Role; rooms?: readonly RoomId[] }

/**
 * What a gateway needs to decide joins of a room itself: the room exists (it is created first when
 * rooms are created on first join), and its bans in force. Asked after the gateway subscribed to the
 * room, so no later ban or unban can pass unseen.
 */
export interface AccessRequest { room: RoomId }
export interface AccessReply { bans: ModerationEntry[] }

export interface SendRequest { caller: Caller; room: RoomId; cid: ClientMsgId; text: string; kind: MessageKind }
export interface SendReply { seq: Seq; duplicate: boolean }
/**
 * A gateway's sends of one short window, in one request: one bus round trip and one Redis pipeline
 * for many messages. Each send is answered on its own, in order.
 */
export interface SendBatchRequest { sends: SendRequest[] }
export interface SendBatchReply { results: Reply<SendReply>[] }

/**
 * Messages with seq in (afterSeq, beforeSeq): the oldest `limit` of them when afterSeq is given,
 * otherwise the newest. `caller` is absent when a gateway fills its own stream.
 */
export interface HistoryRequest { caller?: Caller; room: RoomId; afterSeq?: Seq; beforeSeq?: Seq; limit: number }
export interface HistoryReply {
  msgs: RoomMessage[];
  /** The room's current seq. */
  lastSeq: Seq;
  /** The oldest seq history still holds (lastSeq + 1 when it holds none). */
  firstSeq: Seq;
  /** The room's pinned message as of lastSeq, when one is. */
  pinned?: RoomMessage;
}

/** A `moderate` frame as the client sent it; the room service checks it again and answers the `moderated` frame. */
export interface ModerateRequest { caller: Caller; frame: ModerateFrame }
export type ModerateReply = ModeratedFrame;

/** Every reply is either a result or an error with a stable code. */
export type Reply<T> = { ok: T } | { err: { code: ErrorCode; message: string; retryAfterMs?: number } };
