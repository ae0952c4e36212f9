/**
 * Answers that come back from the room service (a send's `ack` or error, a chat frame's answer) reach
 * the gateway outside the connection's own socket events, where uWS writes each frame at once: a
 * client whose sends of one batch window are answered together would get one socket write per
 * answer, and a sender in a quiet room one write for its `ack` and another for the room's frame that
 * carries its message. The outbox holds a connection's answers until the end of the turn's I/O
 * callbacks (setImmediate) and writes them corked, in one write. The rooms due in the turn are
 * written first (`writeRoomsFirst`): a room's batch takes along the answers of one connection that
 * is waiting for answers about that room (BatchWriter, `senderIn` and `writeWith`), so that the
 * sender's copy of the frame and its `ack` leave in one write.
 *
 * A connection's answers keep their order, and follow every frame the connection was sent before
 * them.
 */
import type { RoomId, WireFormat } from '../shared/protocol/frames.js';
import type { Conn } from './uws-server.js';

export class AnswerOutbox {
  private pending = new Map<Conn, Array<Uint8Array | string>>();
  /** Per room, the first connection that got an answer about it in this turn. */
  private readonly senders = new Map<RoomId, Conn>();
  private readonly flushNow = () => this.flush();

  /** @param writeRoomsFirst writes the rooms due in this turn, which take their senders' answers along. */
  constructor(private readonly writeRoomsFirst: () => void = () => undefined) {}

  /** Writes `data` to the connection at the end of this turn's I/O callbacks; `room`: the room the answer is about. */
  send(conn: Conn, data: Uint8Array | string, room?: RoomId): void {
    if (room !== undefined && !this.senders.has(room)) this.senders.set(room, conn);
    const frames = this.pending.get(conn);
    if (frames) {
      frames.push(data);
      return;
    }
    if (this.pending.size === 0) setImmediate(this.flushNow);
    this.pending.set(conn, [data]);
  }

  /** A connection of this wire format that has answers about the room waiting, if any. */
  senderIn(room: RoomId, format: WireFormat): Conn | undefined {
    const conn = this.senders.get(room);
    return conn && conn.format === format && this.pending.has(conn) ? conn : undefined;
  }

  /** Writes `frame`, then the connection's waiting answers, in one corked write. */
  writeWith(conn: Conn, frame: Uint8Array | string): void {
    const frames = this.pending.get(conn) ?? [];
    this.pending.delete(conn);
    conn.cork(() => {
      conn.send(frame);
      for (const data of frames) conn.send(data);
    });
  }

  /** Writes what is held (queued as an immediate by the first `send` after a flush). */
  private flush(): void {
    this.writeRoomsFirst();
    const due = this.pending;
    this.pending = new Map();
    this.senders.clear();
    for (const [conn, frames] of due) conn.cork(() => { for (const data of frames) conn.send(data); });
  }
}
