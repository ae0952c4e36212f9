/**
 * Bus messages of private and group chat: requests from gateways to the room service on
 * `svc.chat.<op>`, routed deliveries and kicks on `gw.<gatewayId>`, and offline-push events on
 * `push.offline`. Encoded by the one codec; docs/protocol.md documents the push.offline payload.
 */
import type { Role, RoomId, Uid } from './frames.js';
import type { ChatClientFrame, ChatServerFrame, GroupId, MessageId } from './chat-frames.js';
import type { GatewayId, Reply } from './bus-messages.js';

export type ConnId = string;

/** Who is asking, as the gateway authenticated it, and from which connection. */
export interface ChatCaller {
  uid: Uid;
  role: Role;
  /** Device type from the token's `dev` claim: each device type has its own inbox cursor. */
  device: string;
  gatewayId: GatewayId;
  connId: ConnId;
}

/** A chat frame a client sent, forwarded by its gateway; the room service checks it again. */
export interface ChatRequest { caller: ChatCaller; frame: ChatClientFrame }
/** A gateway's chat frames of one op and one short window: one request for all of them. */
export interface ChatBatchRequest { requests: ChatRequest[] }
/** One answer per request, in the request's order; one failing frame fails only itself. */
export interface ChatBatchReply { results: Array<Reply<ChatReply>> }
/** A connection opened: apply the device policy and answer the login push. */
export interface ChatLogin { caller: ChatCaller; connectedAtMs: number }
/** The connections a gateway opened in one tick: one request for all of them. */
export interface ChatLoginsRequest { logins: ChatLogin[] }
/** One login push per login, in the request's order; null where that login failed (the client syncs). */
export interface ChatLoginsReply { frames: (ChatServerFrame | null)[] }
/** What the gateway sends back to the client; nothing for frames that are only acknowledged by silence. */
export interface ChatReply { frame?: ChatServerFrame }

// ---- gw.<gatewayId> -----------------------------------------------------------------------------

/**
 * One frame, encoded once (msgpack), for every local connection of the named uids but `except`; with
 * `room`, only for those of their connections that are in that room.
 */
export interface DeliveryItem { to: Uid[]; f: Uint8Array; except?: ConnId; room?: RoomId }
/** Everything one routing step has for one gateway: one publish. */
export interface DeliverEvent { t: 'deliver'; items: DeliveryItem[] }
/** Close these connections of `uid`: a newer login of the same device type replaced them. */
export interface KickConnsEvent { t: 'kick'; uid: Uid; conns: ConnId[]; device: string }
export type GatewayEvent = DeliverEvent | KickConnsEvent;

// ---- push.offline -------------------------------------------------------------------------------

/** Longest text preview an offline-push event carries, in characters. */
export const PUSH_PREVIEW_LENGTH = 100;
/** Most uids in one offline-push event; a large group's offline members go in several events. */
export const PUSH_UIDS_PER_EVENT = 500;

/** A stored message that some recipients have no online device for. */
export interface OfflinePushEvent {
  t: 'offline';
  kind: 'private' | 'group';
  /** Recipients with no online device. */
  uids: Uid[];
  mid: MessageId;
  from: Uid;
  group?: GroupId;
  /** The text, cut to PUSH_PREVIEW_LENGTH characters. */
  preview: string;
  ts: number;
}
