/**
 * The room service's decisions over an injected store, bus and clock: who may join, send, read and
 * moderate; every accepted message is sequenced and stored by the store, then published once on the
 * room's subject. Replicas share the request subjects through a queue group; any replica may answer.
 */
import type { Bus, Subscription } from '../shared/bus/bus.js';
import { admittedBatch, errorReply, failureReply, serve, type AdmissionGate } from '../shared/bus/rpc.js';
import type { Clock } from '../shared/clock.js';
import { encodeBusMessage } from '../shared/codec/codec.js';
import { canModerate } from '../shared/auth.js';
import { fail, RoomcastError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { RoomServiceMetrics } from '../shared/metrics.js';
import {
  ROOM_SERVICE_QUEUE, subjects,
  type AccessReply, type AccessRequest, type HistoryReply, type HistoryRequest, type ModerateRequest, type RoomEvent,
  type Reply, type SendBatchReply, type SendBatchRequest, type SendReply, type SendRequest,
} from '../shared/protocol/bus-messages.js';
import {
  SENDABLE_KINDS, isRoomId,
  type NoticeFrame, type Priority, type RoomId, type RoomMessage, type Seq, type Uid,
} from '../shared/protocol/frames.js';
import {
  DEFAULT_ROOM_SETTINGS,
  type AppendInput, type AppendRejection, type AppendResult, type ModerationLists, type RateLimit, type RoomInfo, type RoomSettings, type RoomStore, type SendChecks,
} from '../shared/store/room-store.js';
import { moderate } from './moderation.js';
import { mutedNotice, pinnedNotice, slowModeNotice, unmutedNotice, unpinnedNotice } from './notices.js';
import type { RecipientRouter } from './recipient-router.js';
import { checkText, measuredRequest, storeCall } from './service-calls.js';

export interface RoomServiceLimits {
  /** Longest text, in characters (code points). */
  maxTextLength: number;
  historyPageMax: number;
  sendRate: RateLimit;
  /** Create a room on its first join instead of answering unknown_room. */
  autoCreateRooms: boolean;
}

export interface RoomServiceDeps {
  store: RoomStore;
  bus: Bus;
  /** Notices for one user (a mute) go to the gateways where that user is online. */
  router: Pick<RecipientRouter, 'route'>;
  clock: Clock;
  log: Logger;
  metrics: RoomServiceMetrics;
  limits: RoomServiceLimits;
  /** A room's viewers over every gateway, from the fleet's reports held in memory (ViewerTotals). */
  viewers: (room: RoomId) => number;
  /** Told of every message this replica published, so a gateway that lost it hears its seq (ViewerTotals). */
  noteAppended?: (room: RoomId, seq: Seq) => void;
  /** The replica's bounded queue: requests it refuses are answered `overloaded` at once. */
  admission?: AdmissionGate;
}

/** A message a backend publishes into a room (gift, system notice, ...). */
export interface BackendMessage {
  kind: 'gift' | 'system';
  text: string;
  /** Who it is from (the gifting user, or `system`). */
  uid: Uid;
  data?: Record<string, unknown>;
  /** Overrides the kind's priority: a system message of priority 0 may be sampled under overload. */
  prio?: Priority;
  /** Makes a backend's retries idempotent, like a client's message id. */
  cid?: string;
}

export interface RoomSummary extends RoomInfo {
  viewers: number;
}

export class RoomService {
  private readonly subscriptions: Subscription[] = [];
  /** The checks of a viewer's send and of staff's, made once: not two objects per message. */
  private readonly viewerChecks: SendChecks;
  private readonly staffChecks: SendChecks;

  constructor(private readonly deps: RoomServiceDeps) {
    this.viewerChecks = Object.freeze({ rateLimit: deps.limits.sendRate, moderated: true });
    this.staffChecks = Object.freeze({ rateLimit: deps.limits.sendRate, moderated: false });
  }

  /** Joins the queue group and starts answering requests. */
  start(): void {
    const { bus, log, admission } = this.deps;
    const onInternalError = (op: string) => (error: unknown) => log.error('request failed', { op, error });
    this.subscriptions.push(
      serve(bus, subjects.roomAccess, ROOM_SERVICE_QUEUE, (request: AccessRequest) => this.measured('access', () => this.access(request)), onInternalError('access'), admission),
      // Not gated as one request: sendBatch admits each send of the batch on its own.
      serve(bus, subjects.roomSend, ROOM_SERVICE_QUEUE, (request: SendBatchRequest) => this.sendBatch(request, onInternalError('send')), onInternalError('send')),
      serve(bus, subjects.roomHistory, ROOM_SERVICE_QUEUE, (request: HistoryRequest) => this.measured('history', () => this.history(request)), onInternalError('history'), admission),
      serve(bus, subjects.roomModerate, ROOM_SERVICE_QUEUE, (request: ModerateRequest) => this.measured('moderate', () => moderate(this, request)), onInternalError('moderate'), admission),
    );
  }

  /** Leaves the queue group; requests then go to other replicas. */
  stop(): void {
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
  }

  /**
   * A room's join rules for a gateway: the room exists (created now when rooms are created on first
   * join), and its bans in force with their expiry. The gateway decides each join from them.
   */
  async access(request: AccessRequest): Promise<AccessReply> {
    const { store, clock, limits } = this.deps;
    const room = requireRoom(request?.room);
    let lists = await this.stored('moderationLists', () => store.moderationLists(room, clock.now()));
    if (!lists && limits.autoCreateRooms) {
      await this.stored('createRoom', () => store.createRoom(room, DEFAULT_ROOM_SETTINGS, clock.now()));
      lists = await this.stored('moderationLists', () => store.moderationLists(room, clock.now()));
    }
    if (!lists) throw fail.unknown_room(room);
    return { bans: lists.banned };
  }

  /**
   * A gateway's sends of one window: the ones that pass the checks go to the store together (one
   * Redis script call), and each is answered on its own, in order. One failing send fails only
   * itself. The bounded queue counts each send, and takes on or refuses (`overloaded`) the batch whole.
   */
  async sendBatch(request: SendBatchRequest, onInternalError: (error: unknown) => void): Promise<SendBatchReply> {
    const { sends } = request;
    if (!Array.isArray(sends) || sends.length > MAX_SENDS_PER_BATCH) throw fail.bad_request(`'sends' must be a list of at most ${MAX_SENDS_PER_BATCH} sends`);
    const { admission, metrics } = this.deps;
    return admittedBatch(admission, sends.length, async () => {
      const results: Reply<SendReply>[] = new Array(sends.length);
      const inputs: AppendInput[] = [];
      const positions: number[] = [];
      sends.forEach((send: SendRequest, position) => {
        try {
          inputs.push(this.sendInput(send));
          positions.push(position);
        } catch (error) {
          results[position] = failureReply(error, onInternalError);
        }
      });
      if (inputs.length > 0) {
        try {
          const appended = await this.stored('append', () => this.deps.store.appendBatch(inputs));
          const byRoom = new Map<RoomId, RoomMessage[]>();
          appended.forEach((result, index) => {
            const input = inputs[index]!;
            results[positions[index]!] = sendOutcome(input, result);
            if (result.status !== 'appended') return;
            const messages = byRoom.get(input.room);
            if (messages) messages.push(result.message);
            else byRoom.set(input.room, [result.message]);
          });
          // One event per room for the batch: a hot room's messages of one window reach gateways together.
          for (const [room, messages] of byRoom) this.published(room, messages.sort((a, b) => a.seq - b.seq));
        } catch (error) {
          for (const position of positions) results[position] = failureReply(error, onInternalError);
        }
      }
      for (const result of results) metrics.request('send', 'ok' in result ? 'ok' : result.err.code);
      return { results };
    });
  }

  /** What a viewer's send asks the store to append, once the room service allows it. */
  private sendInput(request: SendRequest): AppendInput {
    const { caller, cid, text, kind } = request;
    const room = requireRoom(request.room);
    // A streamer or moderator is one only in the rooms of its token's `rooms` claim: elsewhere it
    // sends chat like a viewer and is subject to the room's mutes and slow mode.
    const staff = canModerate(caller, room);
    if (!SENDABLE_KINDS[caller.role]?.includes(kind) || (kind !== 'chat' && !staff)) {
      throw fail.forbidden(`a ${caller.role} may not send '${kind}' messages in room '${room}'`);
    }
    checkText(text, this.deps.limits.maxTextLength, { kind });
    return { room, uid: caller.uid, kind, text, cid, nowMs: this.deps.clock.now(), checks: staff ? this.staffChecks : this.viewerChecks };
  }

  async history(request: HistoryRequest): Promise<HistoryReply> {
    const room = requireRoom(request.room);
    const limit = clampLimit(request.limit, this.deps.limits.historyPageMax, 1);
    const query = {
      limit,
      ...(request.afterSeq === undefined ? {} : { afterSeq: request.afterSeq }),
      ...(request.beforeSeq === undefined ? {} : { beforeSeq: request.beforeSeq }),
    };
    const result = await this.stored('range', () => this.deps.store.range(room, query));
    if (!result) throw fail.unknown_room(room);
    return result;
  }

  // ---- backend and console operations (the HTTP API) --------------------------------------------

  async createRoom(room: RoomId, settings: Partial<RoomSettings>): Promise<{ created: boolean; room: RoomSummary }> {
    requireRoom(room);
    const created = await this.stored('createRoom', () =>
      this.deps.store.createRoom(room, { ...DEFAULT_ROOM_SETTINGS, ...settings }, this.deps.clock.now()));
    if (created || Object.keys(settings).length === 0) return { created, room: await this.getRoom(room) };
    const before = await this.stored('getRoom', () => this.deps.store.getRoom(room));
    await this.updateSettings(room, settings);
    // Changing slow mode this way tells the viewers too, as the slow-mode endpoint does.
    const { slowModeMs } = settings;
    if (slowModeMs !== undefined && before && before.settings.slowModeMs !== slowModeMs) this.publishNotice(room, slowModeNotice(room, slowModeMs));
    return { created, room: await this.getRoom(room) };
  }

  async getRoom(room: RoomId): Promise<RoomSummary> {
    const info = await this.stored('getRoom', () => this.deps.store.getRoom(room));
    if (!info) throw fail.unknown_room(room);
    return { ...info, viewers: this.deps.viewers(room) };
  }

  async updateSettings(room: RoomId, settings: Partial<RoomSettings>): Promise<void> {
    const found = await this.stored('updateSettings', () => this.deps.store.updateSettings(room, settings));
    if (!found) throw fail.unknown_room(room);
  }

  async publish(room: RoomId, message: BackendMessage): Promise<RoomMessage | { seq: Seq; duplicate: true }> {
    checkText(message.text, this.deps.limits.maxTextLength, { kind: message.kind });
    const result = await this.append({
      room, uid: message.uid, kind: message.kind, text: message.text, nowMs: this.deps.clock.now(),
      ...(message.data === undefined ? {} : { data: message.data }),
      ...(message.prio === undefined ? {} : { prio: message.prio }),
      ...(message.cid === undefined ? {} : { cid: message.cid }),
    });
    return result.status === 'duplicate' ? { seq: result.seq, duplicate: true } : result.message;
  }

  /**
   * Withdraws a message: a `retract` message goes to every viewer and history marks the target
   * deleted. Withdrawing the pinned message also unpins it (an `unpin` message follows).
   */
  async retract(room: RoomId, target: Seq, by: Uid): Promise<RoomMessage> {
    const result = await this.append({ room, uid: by, kind: 'retract', text: '', target, nowMs: this.deps.clock.now() });
    if (result.status !== 'appended') throw fail.internal('a retraction cannot be a duplicate');
    if (result.unpin) this.publishNotice(room, unpinnedNotice(room, by));
    return result.message;
  }

  /** Pins a message of history (replacing any pin): a `pin` message goes to every viewer. */
  async pin(room: RoomId, target: Seq, by: Uid): Promise<{ message: RoomMessage; pinned: RoomMessage }> {
    const result = await this.stored('pin', () => this.deps.store.pin({ room, target, uid: by, nowMs: this.deps.clock.now() }));
    switch (result.status) {
      case 'pinned':
        this.published(room, [result.message]);
        this.publishNotice(room, pinnedNotice(room, by));
        return { message: result.message, pinned: result.pinned };
      case 'rejected':
        if (result.code === 'not_pinnable') throw fail.bad_request('only chat, streamer, moderator, system and gift messages can be pinned');
        throw rejection(result.code, room);
    }
  }

  /** Ends the pin: an `unpin` message goes to every viewer; not_found when nothing is pinned. */
  async unpin(room: RoomId, by: Uid): Promise<RoomMessage> {
    const result = await this.stored('unpin', () => this.deps.store.unpin({ room, uid: by, nowMs: this.deps.clock.now() }));
    if (result.status === 'rejected') {
      if (result.code === 'not_pinned') throw fail.not_found(`nothing is pinned in room '${room}'`);
      throw fail.unknown_room(room);
    }
    this.published(room, [result.message]);
    this.publishNotice(room, unpinnedNotice(room, by));
    return result.message;
  }

  /** Sets the room's slow-mode interval (0: off) and tells its viewers. */
  async setSlowMode(room: RoomId, intervalMs: number, by: Uid): Promise<void> {
    await this.updateSettings(room, { slowModeMs: intervalMs });
    this.publishNotice(room, slowModeNotice(room, intervalMs));
    this.deps.log.info('slow mode set', { room, intervalMs, by });
  }

  /** Mutes (or, with null, unmutes) a user in the room, and tells that user's connections in the room. */
  async setMute(room: RoomId, uid: Uid, durationMs: number | null): Promise<void> {
    const untilMs = durationMs === null ? null : this.deps.clock.now() + durationMs;
    const found = await this.stored('setMute', () => this.deps.store.setMute(room, uid, untilMs));
    if (!found) throw fail.unknown_room(room);
    await this.notifyUser(uid, room, untilMs === null ? unmutedNotice(room) : mutedNotice(room, untilMs));
  }

  /**
   * Bans (or, with null, unbans); a ban also removes the user's connections from the room at once.
   * Gateways hold a room's bans while subscribed to it, so both are published on the room's subject.
   */
  async setBan(room: RoomId, uid: Uid, durationMs: number | null): Promise<void> {
    const untilMs = durationMs === null ? null : this.deps.clock.now() + durationMs;
    const found = await this.stored('setBan', () => this.deps.store.setBan(room, uid, untilMs));
    if (!found) throw fail.unknown_room(room);
    this.publishEvent(untilMs === null ? { t: 'unban', room, uid } : { t: 'kick', room, uid, reason: 'banned', untilMs });
  }

  /** Mutes and bans still in force, sorted by uid. */
  async moderationLists(room: RoomId): Promise<ModerationLists> {
    const lists = await this.stored('moderationLists', () => this.deps.store.moderationLists(room, this.deps.clock.now()));
    if (!lists) throw fail.unknown_room(room);
    return lists;
  }

  // ---- internals ---------------------------------------------------------------------------------

  private async append(input: AppendInput): Promise<AppendResult & { status: 'appended' | 'duplicate' }> {
    const result = await this.stored('append', () => this.deps.store.append(input));
    if (result.status === 'rejected') {
      throw rejection(result.code, input.room, result.retryAfterMs);
    }
    if (result.status === 'appended') this.published(input.room, result.unpin ? [result.message, result.unpin] : [result.message]);
    return result;
  }

  /** Publishes stored messages of one room, in seq order, once on the room's subject. */
  private published(room: RoomId, messages: RoomMessage[]): void {
    this.publishEvent({ t: 'msgs', room, ms: messages });
    this.deps.noteAppended?.(room, messages[messages.length - 1]!.seq);
    for (const message of messages) this.deps.metrics.messagePublished(message.kind);
  }

  private publishNotice(room: RoomId, notice: NoticeFrame): void {
    this.publishEvent({ t: 'notice', room, notice });
  }

  /**
   * Routes a notice to the user's connections that are in the room, wherever they are online. The
   * change it reports is stored already: a failed routing is logged and counted, not an error.
   */
  private async notifyUser(uid: Uid, room: RoomId, notice: NoticeFrame): Promise<void> {
    try {
      await this.deps.router.route([{ to: [uid], frame: notice, room }]);
    } catch (error) {
      this.deps.metrics.busError();
      this.deps.log.warn('notice could not be routed', { room, uid, code: notice.code, error });
    }
  }

  private publishEvent(event: RoomEvent): void {
    try {
      this.deps.bus.publish(subjects.room(event.room), encodeBusMessage(event));
    } catch (error) {
      // The message is stored: gateways find the gap from the room's seq and fill it from history.
      this.deps.metrics.busError();
      this.deps.log.warn('publish failed; gateways will recover the message from history', { room: event.room, error });
    }
  }

  private stored<T>(op: string, action: () => Promise<T>): Promise<T> {
    return storeCall(this.deps.metrics, 'room', op, action);
  }

  private measured<T>(op: string, work: () => Promise<T>): Promise<T> {
    return measuredRequest(this.deps.metrics, op, work);
  }
}

/** A send's answer from what the store did. */
function sendOutcome(input: AppendInput, result: AppendResult): Reply<SendReply> {
  switch (result.status) {
    case 'appended': return { ok: { seq: result.message.seq, duplicate: false } };
    case 'duplicate': return { ok: { seq: result.seq, duplicate: true } };
    case 'rejected': return errorReply(rejection(result.code, input.room, result.retryAfterMs));
  }
}

/** Far above a gateway's own batch size (128): a bound on what one request may ask for. */
const MAX_SENDS_PER_BATCH = 1000;

function requireRoom(room: unknown): RoomId {
  if (!isRoomId(room)) throw fail.bad_room();
  return room;
}

function clampLimit(value: unknown, max: number, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw fail.bad_request('a limit must be an integer');
  return Math.min(max, Math.max(min, value));
}

function rejection(code: AppendRejection, room: RoomId, retryAfterMs?: number): RoomcastError {
  switch (code) {
    case 'not_found': return fail.not_found('no such message in this room');
    case 'rate_limited': return fail.rate_limited();
    case 'slow_mode': return fail.slow_mode(room, retryAfterMs);
    default: return fail[code](room);
  }
}
