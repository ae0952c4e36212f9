/**
 * A raw WebSocket test client (the `ws` package): sends frames as the protocol describes and keeps
 * every frame it receives, so tests can wait for and assert on exact frames.
 */
import WebSocket from 'ws';
import { decodeJson, decodeMsgpack, encodeJson, encodeMsgpack } from '../../src/shared/codec/codec.js';
import { SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, type RoomMessage, type ServerFrame, type WireFormat } from '../../src/shared/protocol/frames.js';

export type AnyFrame = ServerFrame & Record<string, unknown>;

export class WsTestClient {
  readonly frames: AnyFrame[] = [];
  closeCode: number | null = null;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket, readonly format: WireFormat) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.frames.push((isBinary ? decodeMsgpack(data) : decodeJson(data.toString('utf8'))) as AnyFrame);
      for (const wake of this.waiters) wake();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      for (const wake of this.waiters) wake();
    });
  }

  static connect(url: string, options: { token?: string; format?: WireFormat; protocols?: string[]; headers?: Record<string, string> } = {}): Promise<WsTestClient> {
    const format = options.format ?? 'msgpack';
    const target = options.token ? `${url}?token=${encodeURIComponent(options.token)}` : url;
    const protocols = options.protocols ?? [format === 'json' ? SUBPROTOCOL_JSON : SUBPROTOCOL_MSGPACK];
    const ws = new WebSocket(target, protocols, { headers: options.headers ?? {} });
    const client = new WsTestClient(ws, format);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  send(frame: unknown): void {
    if (this.format === 'json') this.ws.send(encodeJson(frame));
    else this.ws.send(encodeMsgpack(frame));
  }

  sendRaw(data: Buffer | string, binary: boolean): void {
    this.ws.send(data, { binary });
  }

  /** Sends `frame` and resolves with the first `answer` frame or error that follows it. */
  request(frame: unknown, answer: string, timeoutMs = 15_000): Promise<AnyFrame> {
    const from = this.frames.length;
    this.send(frame);
    return this.next((f) => f.t === answer || f.t === 'error', timeoutMs, from);
  }

  /** Waits for the first frame after index `from` that matches, and returns it. */
  async next(match: (frame: AnyFrame) => boolean, timeoutMs = 10_000, from = 0): Promise<AnyFrame> {
    const found = () => this.frames.slice(from).find(match);
    return this.until(found, timeoutMs, 'frame');
  }

  async closed(timeoutMs = 10_000): Promise<number> {
    return this.until(() => this.closeCode ?? undefined, timeoutMs, 'close');
  }

  /** Every room message received for `room` (from joined and messages frames), in arrival order. */
  messages(room: string): RoomMessage[] {
    const out: RoomMessage[] = [];
    for (const frame of this.frames) {
      if ((frame.t === 'messages' || frame.t === 'joined') && frame.room === room) out.push(...(frame.msgs as RoomMessage[]));
    }
    return out;
  }

  async until<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const first = check();
    if (first !== undefined) return first;
    return new Promise<T>((resolve, reject) => {
      const wake = () => {
        const value = check();
        if (value === undefined) return;
        cleanup();
        resolve(value);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}; last frames: ${JSON.stringify(this.frames.slice(-3)).slice(0, 600)}`));
      }, timeoutMs);
      const cleanup = () => { clearTimeout(timer); this.waiters.delete(wake); };
      this.waiters.add(wake);
    });
  }

  close(): void {
    this.ws.close();
  }
}
