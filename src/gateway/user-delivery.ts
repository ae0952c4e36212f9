/**
 * Per-uid delivery on the gateway: keeps uid → this gateway's connections, listens on
 * `gw.<gatewayId>`, and writes each routed frame to exactly the named recipients' connections. A
 * frame arrives encoded once (msgpack); a JSON-subprotocol connection gets it transcoded, once per
 * frame. Kicks close the named connections (a newer login of the same device type replaced them).
 */
import type { Bus, Subscription } from '../shared/bus/bus.js';
import { decodeBusMessage, decodeMsgpack, encodeFrame, encodeJson } from '../shared/codec/codec.js';
import { closeCodeOf } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { GatewayMetrics } from '../shared/metrics.js';
import { subjects, type GatewayId } from '../shared/protocol/bus-messages.js';
import type { DeliveryItem, GatewayEvent, KickConnsEvent } from '../shared/protocol/chat-bus-messages.js';
import type { KickedFrame } from '../shared/protocol/chat-frames.js';
import type { RoomId, Uid } from '../shared/protocol/frames.js';
import { CompactMultimap } from './compact-multimap.js';
import type { Conn } from './uws-server.js';

export interface UserDeliveryDeps {
  gatewayId: GatewayId;
  bus: Bus;
  log: Logger;
  metrics: GatewayMetrics;
  /** Whether the connection is in the room: a notice about a room goes only to connections in it. */
  inRoom: (conn: Conn, room: RoomId) => boolean;
}

export class UserDelivery {
  private readonly byUid = new CompactMultimap<Uid, Conn>();
  private subscription: Subscription | null = null;

  constructor(private readonly deps: UserDeliveryDeps) {}

  start(): void {
    this.subscription = this.deps.bus.subscribe(subjects.gateway(this.deps.gatewayId), (message) => {
      let event: GatewayEvent;
      try {
        event = decodeBusMessage(message.data) as GatewayEvent;
      } catch (error) {
        this.deps.metrics.busError();
        this.deps.log.warn('undecodable routed message', { error });
        return;
      }
      if (event?.t === 'deliver' && Array.isArray(event.items)) for (const item of event.items) this.deliver(item);
      else if (event?.t === 'kick') this.kick(event);
    });
  }

  stop(): void {
    this.subscription?.unsubscribe();
    this.subscription = null;
  }

  add(conn: Conn): void {
    this.byUid.add(conn.identity.uid, conn);
  }

  remove(conn: Conn): void {
    this.byUid.delete(conn.identity.uid, conn);
  }

  private deliver(item: DeliveryItem): void {
    if (!Array.isArray(item.to) || !(item.f instanceof Uint8Array)) return;
    const frame = item.f;
    const room = typeof item.room === 'string' ? item.room : undefined;
    let json: string | null = null;
    let delivered = 0;
    // One callback per item, not per recipient.
    const deliverTo = (conn: Conn) => {
      if (conn.id === item.except || conn.closed) return;
      if (room !== undefined && !this.deps.inRoom(conn, room)) return;
      if (conn.format === 'json') conn.send(json ??= encodeJson(decodeMsgpack(frame)));
      else conn.send(frame);
      delivered++;
    };
    for (const uid of item.to) this.byUid.forEach(uid, deliverTo);
    this.deps.metrics.userDelivered(delivered);
  }

  private kick(event: KickConnsEvent): void {
    if (!Array.isArray(event.conns)) return;
    for (const conn of this.byUid.valuesOf(event.uid)) {
      if (!event.conns.includes(conn.id)) continue;
      const frame: KickedFrame = { t: 'kicked', reason: 'device_replaced', device: event.device };
      conn.send(encodeFrame(conn.format, frame));
      this.deps.metrics.errorSent('device_replaced');
      conn.end(closeCodeOf('device_replaced')!, 'device_replaced');
    }
  }
}
