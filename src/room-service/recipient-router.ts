/**
 * Routes frames to users, wherever they are online: one lookup in the online registry for all
 * recipients (pipelined, in chunks), the recipients grouped by the gateway that holds their
 * connections, and one publish per gateway on `gw.<gatewayId>` carrying that gateway's recipients and
 * each frame encoded once. Gateways where no recipient is online get nothing; nothing is broadcast.
 */
import type { Bus } from '../shared/bus/bus.js';
import { encodeBusMessage, encodeMsgpack } from '../shared/codec/codec.js';
import { subjects, type GatewayId } from '../shared/protocol/bus-messages.js';
import type { ConnId, DeliverEvent, DeliveryItem } from '../shared/protocol/chat-bus-messages.js';
import type { RoomId, ServerFrame, Uid } from '../shared/protocol/frames.js';
import type { GatewayDirectory } from '../shared/fleet/gateway-directory.js';
import type { DeviceSession, SessionStore } from '../shared/store/session-store.js';

/** Uids per registry lookup: one pipelined round trip each. */
export const LOOKUP_CHUNK = 1000;

export interface Route {
  to: readonly Uid[];
  frame: ServerFrame;
  /** The connection that sent the message: it has its answer already. */
  except?: ConnId;
  /** Only the recipients' connections that are in this room get the frame (a notice about the room). */
  room?: RoomId;
}

export interface RoutingResult {
  /** Recipients with no live device anywhere. */
  offline: Uid[];
  /** Publishes made: one per gateway with at least one recipient. */
  gateways: number;
}

export interface RecipientRouterDeps {
  sessions: SessionStore;
  /** Which gateway instances still run: sessions of the others are offline (in memory, no Redis read). */
  gateways: GatewayDirectory;
  bus: Bus;
}

/** Lookups asked in one turn of the event loop, answered by one registry read. */
interface PendingLookups {
  uids: Set<Uid>;
  askers: Array<{ uids: readonly Uid[]; resolve: (found: Map<Uid, DeviceSession[]>) => void; reject: (error: unknown) => void }>;
}

export class RecipientRouter {
  private pending: PendingLookups | null = null;

  constructor(private readonly deps: RecipientRouterDeps) {}

  /**
   * The live devices of each uid. Lookups asked in the same turn (the sends of one gateway batch each
   * ask for their two users) share one registry read: a script call costs Redis about as much as
   * the reads it makes.
   */
  lookup(uids: readonly Uid[]): Promise<Map<Uid, DeviceSession[]>> {
    return new Promise((resolve, reject) => {
      if (!this.pending) {
        this.pending = { uids: new Set(), askers: [] };
        queueMicrotask(() => void this.lookupPending());
      }
      for (const uid of uids) this.pending.uids.add(uid);
      this.pending.askers.push({ uids, resolve, reject });
    });
  }

  private async lookupPending(): Promise<void> {
    const { uids, askers } = this.pending!;
    this.pending = null;
    try {
      const found = await this.lookupNow([...uids]);
      for (const asker of askers) {
        const own = new Map<Uid, DeviceSession[]>();
        for (const uid of asker.uids) {
          const devices = found.get(uid);
          if (devices) own.set(uid, devices);
        }
        asker.resolve(own);
      }
    } catch (error) {
      for (const asker of askers) asker.reject(error);
    }
  }

  /** The live devices of each uid, over as many pipelined lookups as there are chunks. */
  private async lookupNow(uids: readonly Uid[]): Promise<Map<Uid, DeviceSession[]>> {
    const found = new Map<Uid, DeviceSession[]>();
    const isLive = (instance: { gatewayId: GatewayId; epoch: number }) => this.deps.gateways.isLive(instance);
    for (let i = 0; i < uids.length; i += LOOKUP_CHUNK) {
      const chunk = await this.deps.sessions.lookup(uids.slice(i, i + LOOKUP_CHUNK), isLive);
      for (const [uid, devices] of chunk) found.set(uid, devices);
    }
    return found;
  }

  /**
   * `known`: what `lookup` answered for every recipient of `routes`, when the caller looked them up
   * already (together with its store call); looked up here otherwise.
   */
  async route(routes: readonly Route[], known?: ReadonlyMap<Uid, DeviceSession[]>): Promise<RoutingResult> {
    const online = known ?? await this.lookup([...new Set(routes.flatMap((route) => route.to))]);
    const perGateway = new Map<GatewayId, DeliveryItem[]>();
    const offline = new Set<Uid>();
    for (const route of routes) {
      const bytes = encodeMsgpack(route.frame);
      const recipients = new Map<GatewayId, Uid[]>();
      for (const uid of route.to) {
        const devices = online.get(uid);
        if (!devices) {
          offline.add(uid);
          continue;
        }
        for (const device of devices) {
          if (device.connId === route.except) continue;
          let list = recipients.get(device.gatewayId);
          if (!list) recipients.set(device.gatewayId, (list = []));
          // A uid with two devices on one gateway is named once: the gateway finds both.
          if (list[list.length - 1] !== uid) list.push(uid);
        }
      }
      for (const [gatewayId, to] of recipients) {
        let items = perGateway.get(gatewayId);
        if (!items) perGateway.set(gatewayId, (items = []));
        items.push({
          to, f: bytes,
          ...(route.except === undefined ? {} : { except: route.except }),
          ...(route.room === undefined ? {} : { room: route.room }),
        });
      }
    }
    for (const [gatewayId, items] of perGateway) {
      const event: DeliverEvent = { t: 'deliver', items };
      this.deps.bus.publish(subjects.gateway(gatewayId), encodeBusMessage(event));
    }
    return { offline: [...offline], gateways: perGateway.size };
  }
}
