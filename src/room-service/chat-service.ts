/**
 * Private (1:1) chat decisions over injected stores, router, bus and clock. A message is checked,
 * stored once (deduplicated by the sender's client message id), appended to both inboxes, routed to
 * the recipient's devices and the sender's other devices, and only then acknowledged: a sender that
 * retries after a lost answer gets the same message back, and it is routed again only when the first
 * attempt may not have pushed it (recipients drop duplicates by mid). Inbox appends that a crash cut short are repaired from the outbox (`repairDeliveries`). Users with no online
 * device get an offline-push event. The login applies the multi-device policy and answers the
 * newest unacknowledged inbox messages.
 */
import type { Bus } from '../shared/bus/bus.js';
import type { Clock } from '../shared/clock.js';
import type { DevicePolicy } from '../shared/config.js';
import { encodeBusMessage } from '../shared/codec/codec.js';
import { fail } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { RoomServiceMetrics } from '../shared/metrics.js';
import { subjects, type GatewayId } from '../shared/protocol/bus-messages.js';
import type { ChatCaller, ConnId, KickConnsEvent } from '../shared/protocol/chat-bus-messages.js';
import type {
  BlockedFrame, ConvHistoryFrame, InboxFrame, PrivateSendFrame, ReadFrame, SentFrame, SyncFrame, SyncedFrame,
} from '../shared/protocol/chat-frames.js';
import type { Seq, Uid } from '../shared/protocol/frames.js';
import {
  privateMessageFor, privateMessageId, type ConversationMessage, type InboxSeqs, type InboxStore, type PrivateRef,
} from '../shared/store/inbox-store.js';
import type { DeviceSession } from '../shared/store/session-store.js';
import type { RateLimit } from '../shared/store/room-store.js';
import type { ChatHandlers } from './chat-handlers.js';
import type { ChatRouting } from './chat-routing.js';
import type { RecipientRouter, Route } from './recipient-router.js';
import { checkText, storeCall } from './service-calls.js';
import { SettleAfterPush } from './settle-after-push.js';
import { WriteWindow } from './write-window.js';

/**
 * How long inbox acknowledgements wait to be written together. A client does not wait on the answer
 * to an `inbox_ack` (its next sync acknowledges as well), so this costs nothing it sees.
 */
export const ACK_WINDOW_MS = 10;

/** The frame types private chat answers; `convs` spans groups too (conversation-list.ts). */
export type PrivateChatFrameType = 'pm' | 'sync' | 'inbox_ack' | 'read' | 'conv_history' | 'block' | 'unblock';

export interface ChatLimits {
  maxTextLength: number;
  /** Private and group messages per user. */
  rate: RateLimit;
  /** Default and largest sync page. */
  syncPage: number;
  /** Newest unacknowledged messages pushed at login. */
  loginPush: number;
  historyPageMax: number;
  devicePolicy: DevicePolicy;
}

export interface ChatServiceDeps {
  inbox: InboxStore;
  /** Noted on every private send: the delivery repair runs while there are some. */
  sendActivity?: { note(nowMs: number): void };
  /** Who is online where: looked up with each send, and for the device policy. */
  router: Pick<RecipientRouter, 'lookup'>;
  routing: ChatRouting;
  /** Kicks replaced devices. */
  bus: Bus;
  clock: Clock;
  log: Logger;
  metrics: RoomServiceMetrics;
  limits: ChatLimits;
}

export class ChatService {
  private readonly acks = new WriteWindow<string, Seq>(ACK_WINDOW_MS);
  /** The highest seq each device acknowledged in the current ack window. */
  private readonly ackedInWindow = new Map<string, Seq>();
  private readonly pushed: SettleAfterPush;

  constructor(private readonly deps: ChatServiceDeps) {
    this.pushed = new SettleAfterPush(deps.bus, (ref) => this.settle(ref), deps.log);
  }

  /** The private-chat requests, each bound to its answer (chat-handlers.ts). */
  readonly handlers: Pick<ChatHandlers, PrivateChatFrameType> = {
    pm: async (caller, frame) => ({ frame: await this.sendPrivate(caller, frame) }),
    sync: async (caller, frame) => ({ frame: await this.sync(caller, frame) }),
    inbox_ack: async (caller, frame) => {
      // A device's acks of one window are one write: the cursor only moves forward, so the highest counts.
      const key = `${caller.uid}/${caller.device}`;
      const seq = Math.max(frame.seq, this.ackedInWindow.get(key) ?? 0);
      this.ackedInWindow.set(key, seq);
      await this.acks.run(key, () => {
        this.ackedInWindow.delete(key);
        return this.stored('ack', () => this.deps.inbox.ack(caller.uid, caller.device, seq, this.deps.clock.now()));
      });
      return {};
    },
    read: async (caller, frame) => {
      await this.markRead(caller, frame);
      return {};
    },
    conv_history: async (caller, frame) => ({ frame: await this.history(caller, frame) }),
    block: async (caller, frame) => ({ frame: await this.setBlocked(caller.uid, frame.uid, true) }),
    unblock: async (caller, frame) => ({ frame: await this.setBlocked(caller.uid, frame.uid, false) }),
  };

  /**
   * Stores (one step in the conversation's slot), appends to both inboxes (a step in each user's
   * slot, unless the store did both in the send: one Redis node, memory), routes, then acknowledges;
   * also the HTTP API's send for backends (caller without a connection). The online lookup goes out
   * together with the store, so a send costs one round trip to Redis before its answer on one node,
   * two on a Cluster. When the inbox steps fail the message is still stored and acknowledged (with
   * `seq` 0): the outbox repair appends and pushes it later.
   */
  async sendPrivate(caller: Pick<ChatCaller, 'uid'> & { connId?: ConnId }, frame: Omit<PrivateSendFrame, 't'>): Promise<SentFrame> {
    const { inbox, clock, limits, router } = this.deps;
    if (frame.to === caller.uid) throw fail.bad_request('a private message needs a recipient other than the sender');
    checkText(frame.text, limits.maxTextLength);
    const nowMs = clock.now();
    this.deps.sendActivity?.note(nowMs);
    const [result, online] = await Promise.all([
      this.stored('privateSend', () => inbox.send({ from: caller.uid, to: frame.to, cid: frame.id, text: frame.text, nowMs, rate: limits.rate })),
      router.lookup([frame.to, caller.uid]).catch((error: unknown) => {
        this.deps.routing.failed(error);
        return null;
      }),
    ]);
    if (result.status === 'rejected') {
      throw result.code === 'blocked' ? fail.blocked(frame.to) : fail.rate_limited();
    }
    const { message } = result;
    if (result.status === 'stored') this.deps.metrics.messagePublished('private');
    // A duplicate whose first attempt settled was appended and pushed already: only its seqs are
    // looked up. Otherwise it is delivered and routed again, as the first attempt may have died first.
    const seqs = result.status === 'duplicate' && result.settled
      ? await this.appendToInboxes(message)
      : await this.deliverAndRoute(message, caller.connId, online ?? undefined, result.status === 'stored' ? result.inboxSeqs : undefined);
    return {
      t: 'sent', id: frame.id, mid: privateMessageId(message.conv, message.cseq), seq: seqs?.senderSeq ?? 0, ts: message.ts, to: frame.to,
      ...(result.status === 'duplicate' ? { duplicate: true as const } : {}),
    };
  }

  /**
   * The inbox steps of stored messages that a crash (or a failing Redis node) left pending for at
   * least `olderThanMs`: appended, pushed to online devices like a fresh send, then settled. Answers
   * how many were repaired.
   */
  async repairDeliveries(olderThanMs: number, limit: number): Promise<number> {
    const due = await this.stored('pendingDeliveries', () => this.deps.inbox.pending(this.deps.clock.now(), olderThanMs, limit));
    let repaired = 0;
    for (const entry of due) {
      const { text, cid } = entry;
      // The conversation no longer holds a trimmed message: it only needs its outbox entry gone.
      const seqs = text === undefined || cid === undefined
        ? await this.deliver(entry)
        : await this.deliverAndRoute({ ...entry, text, cid }, undefined, undefined);
      if (seqs) repaired++;
    }
    if (repaired > 0) this.deps.log.info('repaired pending private deliveries', { repaired, due: due.length });
    return repaired;
  }

  async sync(caller: ChatCaller, frame: SyncFrame): Promise<SyncedFrame> {
    const limit = Math.min(frame.limit ?? this.deps.limits.syncPage, this.deps.limits.syncPage);
    const page = await this.stored('sync', () => this.deps.inbox.sync(caller.uid, caller.device, frame.after, limit, this.deps.clock.now()));
    const after = frame.after ?? page.cursor;
    const lastShown = page.msgs[page.msgs.length - 1]?.seq ?? after;
    const synced: SyncedFrame = { t: 'synced', msgs: page.msgs, cursor: page.cursor, lastSeq: page.lastSeq, more: lastShown < page.lastSeq };
    // Messages the retention dropped before this device got them: say so plainly.
    if (after + 1 < page.firstSeq) synced.gap = { from: after + 1, to: page.firstSeq - 1 };
    return synced;
  }

  /** The device policy, then the newest unacknowledged messages for the new connection. */
  async login(caller: ChatCaller, connectedAtMs: number): Promise<InboxFrame> {
    if (this.deps.limits.devicePolicy === 'one-per-type') await this.kickOlderDevices(caller, connectedAtMs);
    const page = await this.stored('latest', () =>
      this.deps.inbox.latest(caller.uid, caller.device, this.deps.limits.loginPush, this.deps.clock.now()));
    return { t: 'inbox', msgs: page.msgs, cursor: page.cursor, lastSeq: page.lastSeq };
  }

  async setBlocked(uid: Uid, target: Uid, blocked: boolean): Promise<BlockedFrame> {
    if (uid === target) throw fail.bad_request('a user cannot block themselves');
    await this.stored('block', () => this.deps.inbox.setBlocked(uid, target, blocked));
    return { t: 'blocked', uid: target, blocked };
  }

  // ---- internals ---------------------------------------------------------------------------------

  /**
   * The inbox steps (unless `appended`: the store's send ran them), then the live pushes (and the
   * offline push to the recipient), then the outbox entry is settled once the bus server has the
   * pushes, without holding up the answer (not at all when routing failed). Null when the inbox steps
   * failed: the message stays in the outbox for the repair.
   */
  private async deliverAndRoute(
    message: ConversationMessage, exceptConn: ConnId | undefined, online: Map<Uid, DeviceSession[]> | undefined, appended?: InboxSeqs,
  ): Promise<InboxSeqs | null> {
    const seqs = appended ?? await this.appendToInboxes(message);
    if (!seqs) return null;
    const routes: Route[] = [];
    if (seqs.recipientSeq > 0) routes.push({ to: [message.to], frame: { t: 'inbox', msgs: [privateMessageFor(message, seqs.recipientSeq)] } });
    if (seqs.senderSeq > 0) {
      routes.push({ to: [message.from], frame: { t: 'inbox', msgs: [privateMessageFor(message, seqs.senderSeq)] }, ...(exceptConn ? { except: exceptConn } : {}) });
    }
    const routed = await this.deps.routing.routeSafely(routes, { kind: 'private', mid: privateMessageId(message.conv, message.cseq), from: message.from, text: message.text, ts: message.ts },
      (uid) => uid === message.to, online);
    // Unrouted, it stays in the outbox: a retry or the repair pushes it again.
    if (routed) this.pushed.add(message);
    return seqs;
  }

  /** The inbox steps and the settling of a message that is no longer there to push. */
  private async deliver(ref: PrivateRef): Promise<InboxSeqs | null> {
    const seqs = await this.appendToInboxes(ref);
    if (seqs) this.settle(ref);
    return seqs;
  }

  private async appendToInboxes(ref: PrivateRef): Promise<InboxSeqs | null> {
    try {
      return await this.stored('deliver', () => this.deps.inbox.deliver(ref, this.deps.clock.now()));
    } catch (error) {
      this.deps.log.warn('inbox append failed; the outbox repair retries it', { error, mid: privateMessageId(ref.conv, ref.cseq) });
      return null;
    }
  }

  /** Not awaited: a failure leaves the entry for the repair, which finds the inboxes done and settles again. */
  private settle(ref: PrivateRef): void {
    this.stored('settle', () => this.deps.inbox.settle(ref)).catch((error: unknown) => {
      this.deps.log.warn('settling a delivered message failed; the outbox repair settles it', { error, mid: privateMessageId(ref.conv, ref.cseq) });
    });
  }

  private async markRead(caller: ChatCaller, frame: ReadFrame): Promise<void> {
    const readSeq = await this.stored('read', () => this.deps.inbox.markRead(caller.uid, frame.peer, frame.cseq));
    if (readSeq === 0) throw fail.not_found(`no conversation with '${frame.peer}'`);
    await this.deps.routing.routeSafely([{ to: [frame.peer], frame: { t: 'receipt', from: caller.uid, cseq: readSeq } }]);
  }

  private async history(caller: ChatCaller, frame: ConvHistoryFrame) {
    const limit = Math.min(frame.limit ?? this.deps.limits.historyPageMax, this.deps.limits.historyPageMax);
    const page = await this.stored('convHistory', () =>
      this.deps.inbox.history(caller.uid, frame.peer, frame.beforeSeq, limit, this.deps.clock.now()));
    return { t: 'conv_history' as const, peer: frame.peer, msgs: page.msgs, more: page.more };
  }

  private async kickOlderDevices(caller: ChatCaller, connectedAtMs: number): Promise<void> {
    const devices = (await this.deps.router.lookup([caller.uid])).get(caller.uid) ?? [];
    const perGateway = new Map<GatewayId, ConnId[]>();
    for (const device of devices) {
      const same = device.gatewayId === caller.gatewayId && device.connId === caller.connId;
      // Ties go to the connection with the larger id, so two simultaneous logins do not kick each other.
      const older = device.connectedAtMs < connectedAtMs || (device.connectedAtMs === connectedAtMs && device.connId < caller.connId);
      if (same || device.device !== caller.device || !older) continue;
      const conns = perGateway.get(device.gatewayId) ?? [];
      conns.push(device.connId);
      perGateway.set(device.gatewayId, conns);
    }
    for (const [gatewayId, conns] of perGateway) {
      const event: KickConnsEvent = { t: 'kick', uid: caller.uid, conns, device: caller.device };
      this.deps.bus.publish(subjects.gateway(gatewayId), encodeBusMessage(event));
    }
  }

  /** A store call of chat: timed, counted, `unavailable` on failure. */
  stored<T>(op: string, action: () => Promise<T>): Promise<T> {
    return storeCall(this.deps.metrics, 'chat', op, action);
  }
}


