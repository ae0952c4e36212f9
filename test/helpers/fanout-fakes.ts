/**
 * Fakes of the gateway's socket seams for deterministic fan-out tests: a recording Publisher (the uWS
 * topic publish) whose frames are decoded with the codec and handed to the fake connections subscribed
 * at the time, and a room history with a retention boundary, as the room service answers it.
 */
import { decodeJson, decodeMsgpack } from '../../src/shared/codec/codec.js';
import type { HistoryReply } from '../../src/shared/protocol/bus-messages.js';
import type { MessageKind, RoomMessage, Seq, ServerFrame, WireFormat } from '../../src/shared/protocol/frames.js';
import { priorityOf } from '../../src/shared/protocol/frames.js';
import type { HistoryQuery } from '../../src/gateway/room-client.js';
import type { Conn, Publisher, SendResult } from '../../src/gateway/uws-server.js';

export function decodeWire(data: Uint8Array | string): ServerFrame {
  return (typeof data === 'string' ? decodeJson(data) : decodeMsgpack(data)) as ServerFrame;
}

/** A publish: to the topic's subscribers, but `except` when a connection published it (Conn.publishToOthers). */
export interface Write { topic: string; data: Uint8Array | string; frame: ServerFrame; except?: string }

export class RecordingPublisher implements Publisher {
  readonly writes: Write[] = [];
  readonly subscribed = new Map<string, Set<FakeConn>>();

  publish(topic: string, data: Uint8Array | string, except?: FakeConn): void {
    const frame = decodeWire(data);
    this.writes.push({ topic, data, frame, ...(except ? { except: except.id } : {}) });
    for (const conn of this.subscribed.get(topic) ?? []) if (conn !== except) conn.received.push(frame);
  }
}

export class FakeConn implements Conn {
  readonly received: ServerFrame[] = [];
  closed = false;
  buffered = 0;
  lastHeardMs = 0;
  readonly identity;

  constructor(private readonly publisher: RecordingPublisher, readonly id: string, readonly format: WireFormat = 'msgpack', uid = id) {
    this.identity = { uid, role: 'viewer' as const, device: 'web' };
  }

  send(data: Uint8Array | string): SendResult {
    this.received.push(decodeWire(data));
    return 'sent';
  }

  subscribe(topic: string): void {
    let conns = this.publisher.subscribed.get(topic);
    if (!conns) this.publisher.subscribed.set(topic, conns = new Set());
    conns.add(this);
  }

  unsubscribe(topic: string): void {
    this.publisher.subscribed.get(topic)?.delete(this);
  }

  bufferedBytes(): number {
    return this.buffered;
  }

  end(): void { this.closed = true; }
  ping(): void {}

  publishToOthers(topic: string, data: Uint8Array | string): boolean {
    if (!this.publisher.subscribed.get(topic)?.has(this)) return false;
    this.publisher.publish(topic, data, this);
    return true;
  }

  /** Writes made corked, each as the frames it held. */
  readonly corked: ServerFrame[][] = [];

  cork(write: () => void): void {
    const before = this.received.length;
    write();
    this.corked.push(this.received.slice(before));
  }

  /** Seqs of the messages this connection got in `messages` frames, in order. */
  seqs(): Seq[] {
    return this.received.flatMap((frame) => (frame.t === 'messages' ? frame.msgs.map((m) => m.seq) : []));
  }

  framesOf<T extends ServerFrame['t']>(t: T): Array<Extract<ServerFrame, { t: T }>> {
    return this.received.filter((frame): frame is Extract<ServerFrame, { t: T }> => frame.t === t);
  }
}

export function message(seq: Seq, kind: MessageKind = 'chat', ts = 1_000_000 + seq): RoomMessage {
  return { seq, uid: `u${seq}`, kind, prio: priorityOf(kind), text: `m${seq}`, ts };
}

/** A room's history as the room service keeps it: everything stored, the oldest ones expired. */
export class FakeHistory {
  readonly stored: RoomMessage[] = [];
  /** The oldest seq still held. */
  retainedFrom: Seq = 1;
  readonly queries: HistoryQuery[] = [];
  failNext = 0;

  store(...messages: RoomMessage[]): void {
    this.stored.push(...messages);
  }

  get lastSeq(): Seq {
    return this.stored.at(-1)?.seq ?? 0;
  }

  read(query: HistoryQuery): HistoryReply {
    this.queries.push(query);
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('history unavailable');
    }
    const held = this.stored.filter((m) => m.seq >= this.retainedFrom);
    const { afterSeq, beforeSeq, limit } = query;
    let msgs = held.filter((m) => (afterSeq === undefined || m.seq > afterSeq) && (beforeSeq === undefined || m.seq < beforeSeq));
    // Without afterSeq the newest `limit`, as the room service pages a plain read.
    msgs = afterSeq === undefined ? msgs.slice(-limit) : msgs.slice(0, limit);
    return { msgs, lastSeq: this.lastSeq, firstSeq: held[0]?.seq ?? this.lastSeq + 1 };
  }
}
