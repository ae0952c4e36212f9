/**
 * Answers that come back from the room service (a send's `ack` or error, a chat frame's answer) reach
 * the gateway outside the connection's own socket events, where uWS writes each frame at once: a
 * client whose sends of one batch window are answered together would get one socket write per
 * answer. The outbox holds a reply's answers until the reply is handled (the microtasks its answers
 * resolve have run) and writes each connection's frames corked, in one write, as a server answering
 * in its read handler does. A connection's frames keep their order.
 *
 * Not at the end of the event-loop turn: the room's batch of the same messages is published later
 * in the turn (setImmediate), and corked writes made after it were not coalesced in the gateway: uWS
 * wrote the connection's pending topic frame, then each answer on its own (seen with strace on
 * uWS.js 20.30). Answers written before that publish keep their one write.
 */
import type { Conn } from './uws-server.js';

export class AnswerOutbox {
  private pending = new Map<Conn, Array<Uint8Array | string>>();
  private readonly flushNow = () => this.flush();

  /** Writes `data` to the connection once the current microtasks have run, with its other frames of them. */
  send(conn: Conn, data: Uint8Array | string): void {
    const frames = this.pending.get(conn);
    if (frames) {
      frames.push(data);
      return;
    }
    if (this.pending.size === 0) queueMicrotask(this.flushNow);
    this.pending.set(conn, [data]);
  }

  /** Writes what is held (queued as a microtask by the first `send` after a flush). */
  private flush(): void {
    const due = this.pending;
    if (due.size === 0) return;
    this.pending = new Map();
    for (const [conn, frames] of due) {
      if (frames.length === 1) conn.send(frames[0]!);
      else conn.cork(() => { for (const data of frames) conn.send(data); });
    }
  }
}
