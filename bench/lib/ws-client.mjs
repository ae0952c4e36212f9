/**
 * A minimal RFC 6455 WebSocket client over net.Socket, light enough that a few load-generator
 * processes keep up with a gateway writing to tens of thousands of connections: reads land in one
 * shared buffer (`onread`), server frames are parsed in place and incrementally, client frames
 * are masked.
 *
 * It speaks only what the harness needs: one handshake (with a subprotocol), text / binary / ping /
 * pong / close frames, no extensions (permessage-deflate is never offered).
 */
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';

export const OPCODE_TEXT = 0x1;
export const OPCODE_BINARY = 0x2;
const OPCODE_CONTINUATION = 0x0;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;
const OPCODE_PONG = 0xa;

const HEADER_END = Buffer.from('\r\n\r\n');
/** The key only has to be 16 base64-encoded bytes; the accept header is not checked (status 101 is). */
const HANDSHAKE_KEY = randomBytes(16).toString('base64');
const MAX_HANDSHAKE_BYTES = 16 * 1024;
/**
 * One receive buffer for every connection of the process: with `onread` the socket reads straight
 * into it and calls back without the stream machinery or a Buffer per read. A read's bytes are
 * only valid during the callback; incomplete frames are copied out.
 */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

/**
 * One client connection. `onFrame(opcode, payload)` gets every complete text or binary message
 * (`payload` is a Buffer view valid only during the call); pings are answered here.
 */
export class RawWsConnection {
  /**
   * @param {{ host: string, port: number, path: string, protocol?: string, localAddress?: string,
   *           headers?: Record<string, string> }} target
   * @param {{ onOpen(): void, onFrame(opcode: number, payload: Buffer): void, onClose(code: number, reason: string): void }} handlers
   */
  constructor(target, handlers) {
    this.handlers = handlers;
    this.open = false;
    this.closed = false;
    /** @type {Buffer | null} bytes received but not yet parsed */
    this.pending = null;
    /** @type {Buffer[] | null} a fragmented message being assembled */
    this.fragments = null;
    this.fragmentOpcode = 0;
    this.closeCode = 1006;
    this.closeReason = '';
    const socket = connect({
      host: target.host,
      port: target.port,
      ...(target.localAddress ? { localAddress: target.localAddress } : {}),
      onread: {
        buffer: READ_BUFFER,
        callback: (bytes, buffer) => {
          const chunk = buffer.subarray(0, bytes);
          if (this.open) this.onData(chunk);
          else this.onHandshakeData(chunk);
        },
      },
    });
    this.socket = socket;
    socket.setNoDelay(true);
    const lines = [
      `GET ${target.path} HTTP/1.1`,
      `Host: ${target.host}:${target.port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${HANDSHAKE_KEY}`,
      'Sec-WebSocket-Version: 13',
    ];
    if (target.protocol) lines.push(`Sec-WebSocket-Protocol: ${target.protocol}`);
    for (const [name, value] of Object.entries(target.headers ?? {})) lines.push(`${name}: ${value}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    socket.on('error', (error) => { this.closeReason ||= error.code ?? error.message; });
    socket.on('close', () => {
      if (this.closed) return;
      this.closed = true;
      this.open = false;
      this.handlers.onClose(this.closeCode, this.closeReason);
    });
  }

  /** @param {Buffer} chunk */
  onHandshakeData(chunk) {
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    const end = data.indexOf(HEADER_END);
    if (end < 0) {
      if (data.length > MAX_HANDSHAKE_BYTES) this.fail('handshake response too large');
      else this.pending = Buffer.from(data);
      return;
    }
    this.pending = null;
    const head = data.toString('latin1', 0, end);
    if (!head.startsWith('HTTP/1.1 101')) {
      this.fail(`handshake refused: ${head.split('\r\n', 1)[0]}`);
      return;
    }
    this.open = true;
    this.handlers.onOpen();
    const rest = data.subarray(end + HEADER_END.length);
    if (rest.length > 0 && !this.closed) this.onData(rest);
  }

  /** @param {Buffer} chunk */
  onData(chunk) {
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    let offset = 0;
    const length = data.length;
    while (length - offset >= 2) {
      const first = data[offset];
      const second = data[offset + 1];
      let payloadLength = second & 0x7f;
      let headerLength = 2;
      if (payloadLength === 126) {
        if (length - offset < 4) break;
        payloadLength = data.readUInt16BE(offset + 2);
        headerLength = 4;
      } else if (payloadLength === 127) {
        if (length - offset < 10) break;
        payloadLength = Number(data.readBigUInt64BE(offset + 2));
        headerLength = 10;
      }
      if (second & 0x80) { this.fail('server frames must not be masked'); return; }
      const frameEnd = offset + headerLength + payloadLength;
      if (frameEnd > length) break;
      this.onFrame(first & 0x0f, (first & 0x80) !== 0, data.subarray(offset + headerLength, frameEnd));
      if (this.closed) return;
      offset = frameEnd;
    }
    // Keep the incomplete tail: a copy, since the read buffer is reused by the next read.
    if (offset < length) this.pending = Buffer.from(data.subarray(offset));
  }

  /** @param {number} opcode @param {boolean} fin @param {Buffer} payload */
  onFrame(opcode, fin, payload) {
    if (opcode === OPCODE_TEXT || opcode === OPCODE_BINARY) {
      if (fin) this.handlers.onFrame(opcode, payload);
      else { this.fragments = [Buffer.from(payload)]; this.fragmentOpcode = opcode; }
    } else if (opcode === OPCODE_CONTINUATION) {
      if (!this.fragments) { this.fail('continuation without a first fragment'); return; }
      this.fragments.push(Buffer.from(payload));
      if (fin) {
        const whole = Buffer.concat(this.fragments);
        this.fragments = null;
        this.handlers.onFrame(this.fragmentOpcode, whole);
      }
    } else if (opcode === OPCODE_PING) {
      this.writeFrame(OPCODE_PONG, payload);
    } else if (opcode === OPCODE_CLOSE) {
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      this.closeReason = payload.toString('utf8', 2);
      this.writeFrame(OPCODE_CLOSE, payload.subarray(0, 2));
      this.socket.end();
    }
  }

  /** Sends one binary (Uint8Array) or text (string) message. */
  send(data) {
    if (typeof data === 'string') this.writeFrame(OPCODE_TEXT, Buffer.from(data, 'utf8'));
    else this.writeFrame(OPCODE_BINARY, data);
  }

  /** @param {number} opcode @param {Uint8Array} payload */
  writeFrame(opcode, payload) {
    if (this.closed || this.socket.destroyed) return;
    const length = payload.length;
    const headerLength = length < 126 ? 6 : length < 65536 ? 8 : 14;
    const frame = Buffer.allocUnsafe(headerLength + length);
    frame[0] = 0x80 | opcode;
    if (length < 126) frame[1] = 0x80 | length;
    else if (length < 65536) { frame[1] = 0x80 | 126; frame.writeUInt16BE(length, 2); }
    else { frame[1] = 0x80 | 127; frame.writeBigUInt64BE(BigInt(length), 2); }
    // A fresh mask per frame, as RFC 6455 asks of clients.
    const maskAt = headerLength - 4;
    const mask = (Math.random() * 0x100000000) >>> 0;
    frame.writeUInt32BE(mask, maskAt);
    for (let i = 0; i < length; i++) frame[headerLength + i] = payload[i] ^ frame[maskAt + (i & 3)];
    this.socket.write(frame);
  }

  /** Sends a close frame and ends the socket (the server's close completes it). */
  close(code = 1000) {
    if (this.closed) return;
    if (this.open) {
      const payload = Buffer.alloc(2);
      payload.writeUInt16BE(code, 0);
      this.writeFrame(OPCODE_CLOSE, payload);
    }
    this.socket.end();
    // A server that never answers must not keep the harness waiting.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  /** Drops the TCP connection without a close frame, as a network failure would. */
  destroy() {
    this.socket.destroy();
  }

  fail(reason) {
    this.closeReason = reason;
    this.socket.destroy();
  }
}
