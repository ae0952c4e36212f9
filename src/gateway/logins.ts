/**
 * What a new connection needs after its welcome: its entry in the online registry, then the device
 * policy and the login push. The connections opened in one tick go together: their registry writes
 * leave in one Redis write (the client's auto-pipelining sends a tick's commands at once) and their
 * logins in one request, instead of a round trip each. Registered first, so the device policy and
 * every route see the connection.
 */
import type { Clock } from '../shared/clock.js';
import type { GatewayId } from '../shared/protocol/bus-messages.js';
import type { SessionStore } from '../shared/store/session-store.js';
import type { ChatClient, OpenedConn } from './chat-client.js';
import type { Conn } from './uws-server.js';

export interface LoginsDeps {
  gatewayId: GatewayId;
  /** The start epoch of this gateway instance, written with each session. */
  epoch: number;
  sessionStore: Pick<SessionStore, 'register' | 'unregister'>;
  chat: Pick<ChatClient, 'logins'>;
  clock: Clock;
  storeFailed: (op: string, error: unknown) => void;
}

export class Logins {
  private pending: OpenedConn[] = [];
  /** Connections of `pending`, so that one closed before its batch left is never registered. */
  private readonly waiting = new Set<Conn>();
  private scheduled = false;

  constructor(private readonly deps: LoginsDeps) {}

  opened(conn: Conn): void {
    this.pending.push({ conn, connectedAtMs: this.deps.clock.now() });
    this.waiting.add(conn);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Removes the connection's registry entry, unless it closed before it was written. */
  closed(conn: Conn): void {
    if (this.waiting.delete(conn)) return;
    // Issued after its register on the same connection to Redis, so it cannot be overtaken.
    this.deps.sessionStore.unregister(conn.identity.uid, this.deps.gatewayId, conn.id)
      .catch((error: unknown) => this.deps.storeFailed('unregister', error));
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending.filter(({ conn }) => this.waiting.delete(conn));
    this.pending = [];
    if (batch.length === 0) return;
    const { gatewayId, epoch, sessionStore } = this.deps;
    const writes = batch.map(({ conn, connectedAtMs }) => sessionStore.register({
      uid: conn.identity.uid, device: conn.identity.device, gatewayId, epoch, connId: conn.id, connectedAtMs,
    }).then(() => true, (error: unknown) => { this.deps.storeFailed('register', error); return false; }));
    void Promise.all(writes).then((written) => this.deps.chat.logins(batch.filter((_, i) => written[i])));
  }
}
