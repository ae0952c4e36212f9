/**
 * The online registry of the all-in-one mode: the same contract as the Redis store, in one process's
 * memory. Like it, readers drop the sessions of gateway instances that are over.
 */
import type { Uid } from '../protocol/frames.js';
import type { GatewayId } from '../protocol/bus-messages.js';
import type { ConnId, DeviceSession, InstanceLiveness, SessionStore } from './session-store.js';

export class MemorySessionStore implements SessionStore {
  /** uid → "<gatewayId>/<connId>" → session. */
  private readonly sessions = new Map<Uid, Map<string, Readonly<DeviceSession>>>();

  async register(session: DeviceSession): Promise<void> {
    let devices = this.sessions.get(session.uid);
    if (!devices) this.sessions.set(session.uid, (devices = new Map()));
    // A frozen copy, as Redis stores one: the caller may reuse its object.
    devices.set(deviceKey(session.gatewayId, session.connId), Object.freeze({ ...session }));
  }

  async unregister(uid: Uid, gatewayId: GatewayId, connId: ConnId): Promise<void> {
    const devices = this.sessions.get(uid);
    devices?.delete(deviceKey(gatewayId, connId));
    if (devices?.size === 0) this.sessions.delete(uid);
  }

  async lookup(uids: readonly Uid[], isLive: InstanceLiveness): Promise<Map<Uid, DeviceSession[]>> {
    const found = new Map<Uid, DeviceSession[]>();
    for (const uid of uids) {
      const devices = this.sessions.get(uid);
      if (!devices) continue;
      const live: DeviceSession[] = [];
      for (const [key, session] of devices) {
        if (isLive(session)) live.push(session);
        else devices.delete(key);
      }
      if (devices.size === 0) this.sessions.delete(uid);
      if (live.length > 0) found.set(uid, live);
    }
    return found;
  }

  async close(): Promise<void> {}
}

function deviceKey(gatewayId: GatewayId, connId: ConnId): string {
  return `${gatewayId}/${connId}`;
}
