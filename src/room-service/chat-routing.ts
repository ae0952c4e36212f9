/**
 * Live pushes of chat frames with the offline-push events for recipients online nowhere; shared by
 * private and group chat. Routing failures never fail a send: the message is stored, and recipients
 * get it on their next sync (or by the gap they see in their seq).
 */
import type { Bus } from '../shared/bus/bus.js';
import { encodeBusMessage } from '../shared/codec/codec.js';
import type { Logger } from '../shared/log.js';
import type { RoomServiceMetrics } from '../shared/metrics.js';
import { subjects } from '../shared/protocol/bus-messages.js';
import { PUSH_PREVIEW_LENGTH, PUSH_UIDS_PER_EVENT, type OfflinePushEvent } from '../shared/protocol/chat-bus-messages.js';
import type { GroupId, MessageId } from '../shared/protocol/chat-frames.js';
import type { Uid } from '../shared/protocol/frames.js';
import type { DeviceSession } from '../shared/store/session-store.js';
import type { RecipientRouter, Route } from './recipient-router.js';

/** What an offline-push event tells about a stored message. */
export interface PushSummary { kind: 'private' | 'group'; mid: MessageId; from: Uid; text: string; ts: number; group?: GroupId }

export interface ChatRoutingDeps {
  router: Pick<RecipientRouter, 'route'>;
  bus: Bus;
  log: Logger;
  metrics: RoomServiceMetrics;
}

export class ChatRouting {
  constructor(private readonly deps: ChatRoutingDeps) {}

  /**
   * Routes; recipients online nowhere that `pushFor` accepts get an offline-push event. `online`: the
   * recipients' devices when the caller has them already (looked up otherwise). Answers whether the
   * routes were published (false when the lookup or the bus failed).
   */
  async routeSafely(routes: Route[], push?: PushSummary, pushFor?: (uid: Uid) => boolean, online?: ReadonlyMap<Uid, DeviceSession[]>): Promise<boolean> {
    try {
      const { offline } = await this.deps.router.route(routes, online);
      if (push && pushFor) this.publishOfflinePush(push, offline.filter(pushFor));
      return true;
    } catch (error) {
      this.failed(error);
      return false;
    }
  }

  publishOfflinePush(push: PushSummary, offline: readonly Uid[]): void {
    if (offline.length === 0) return;
    const preview = [...push.text].slice(0, PUSH_PREVIEW_LENGTH).join('');
    for (let i = 0; i < offline.length; i += PUSH_UIDS_PER_EVENT) {
      const event: OfflinePushEvent = {
        t: 'offline', kind: push.kind, uids: offline.slice(i, i + PUSH_UIDS_PER_EVENT), mid: push.mid, from: push.from,
        preview, ts: push.ts, ...(push.group ? { group: push.group } : {}),
      };
      this.deps.bus.publish(subjects.pushOffline, encodeBusMessage(event));
    }
  }

  failed(error: unknown): void {
    this.deps.metrics.busError();
    this.deps.log.warn('routing failed; recipients will sync the message', { error });
  }
}
