/**
 * Answers that come back from the room service (a send's `ack` or error, a chat frame's answer) reach
 * the gateway outside the connection's own socket events, where uWS writes each frame at once: a
 * client whose sends of one batch window are answered together would get one socket write per
 * answer, and a sender in a quiet room one write for its `ack` and another for the room's frame that
 * carries its message. The outbox holds the answers until the end of the turn's I/O callbacks
 * (setImmediate) and writes each connection's frames corked, after the rooms due in this turn are
 * published (`beforeFlush`): uWS writes a connection's pending topic frames when something is sent to
 * it, so inside the cork the room's frame and the answers leave in one socket write (checked with
 * strace on uWS.js 20.30). A connection's answers keep their order.
 */
import type { Conn } from './uws-server.js';

export class AnswerOutbox {
  private pending = new Map<Conn, Array<Uint8Array | string>>();
  private readonly flushNow = () => this.flush();

  /** @param beforeFlush publishes what the rooms have due in this turn, so that it shares the answers' writes. */
  constructor(private readonly beforeFlush: () => void = () => undefined) {}

  /** Writes `data` to the connection at the end of this turn's I/O callbacks, with its other frames of them. */
  send(conn: Conn, data: Uint8Array | string): void {
    const frames = this.pending.get(conn);
    if (frames) {
      frames.push(data);
      return;
    }
    if (this.pending.size === 0) setImmediate(this.flushNow);
    this.pending.set(conn, [data]);
  }

  /** Writes what is held (queued as an immediate by the first `send` after a flush). */
  private flush(): void {
    const due = this.pending;
    if (due.size === 0) return;
    this.pending = new Map();
    this.beforeFlush();
    for (const [conn, frames] of due) conn.cork(() => { for (const data of frames) conn.send(data); });
  }
}
