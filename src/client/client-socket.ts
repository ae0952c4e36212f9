/**
 * The SDK's connection to a gateway: it owns the WebSocket and its life (dispatch lookup, token,
 * connect, welcome timeout, heartbeat, reconnection with backoff or when the server asks), the wire
 * format (frames are encoded and decoded here only), and the dispatch of decoded frames by type to
 * the handlers its owner registers. It knows nothing of rooms or requests: what must happen when a
 * connection opens, is lost or is given up is its owner's business (`SocketOwner`).
 *
 * Only the browser WebSocket API is used (binaryType, on* handlers, send, close, readyState), so Node
 * passes the `ws` package's class, and browsers need nothing.
 */
import { decodeJson, decodeMsgpack, encodeFrame } from '../shared/codec/codec.js';
import { closeCodeOf } from '../shared/errors.js';
import {
  SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK,
  type ClientFrame, type ErrorFrame, type ModerateFrame, type ReconnectFrame, type RoomStatsRequestFrame, type ServerFrame,
  type WelcomeFrame, type WireFormat,
} from '../shared/protocol/frames.js';
import { fullJitterDelayMs, type BackoffSettings } from './backoff.js';
import { ClientError } from './client-error.js';

/** A connection that stayed up this long resets the backoff: the next drop reconnects quickly again. */
export const STABLE_CONNECTION_MS = 10_000;
/** The heartbeat never ticks faster than this, whatever the server's heartbeatMs. */
const MIN_HEARTBEAT_TICK_MS = 500;

const WS_OPEN = 1;
const CLOSE_NORMAL = 1000;
/** What browsers report when a connection ended without a close frame; also used for drops the client decides. */
const CLOSE_ABNORMAL = 1006;
const CLOSE_SERVICE_RESTART = 1012;
const CLOSE_UNAUTHORIZED = closeCodeOf('unauthorized')!;
const CLOSE_DEVICE_REPLACED = closeCodeOf('device_replaced')!;

/** Every frame the SDK sends. */
export type OutgoingFrame = ClientFrame | ModerateFrame | RoomStatsRequestFrame;

// ---- the WebSocket the client drives ------------------------------------------------------------

export interface MessageEventLike { readonly data: unknown }
export interface CloseEventLike { readonly code: number; readonly reason: string }

/** The part of the browser WebSocket API the client uses; the `ws` package's class has it too. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  // `never`: any handler type of a real implementation fits; the client assigns its own.
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/**
 * `idle` before connect(); `connecting` while a connection attempt waits for its welcome; `open` after
 * it; `reconnecting` while waiting to try again; `closed` after close(), after the server refused
 * the token (4001), or after a lost connection when reconnection is disabled.
 */
export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface DisconnectInfo {
  /**
   * The WebSocket close code (docs/protocol.md lists them). 1006 also stands for drops the client
   * decided itself: no welcome in time, no answer to a ping, a token provider that failed.
   */
  code: number;
  reason: string;
}

export interface ReconnectInfo {
  /** 1 for the first attempt after a connection was lost, counting up while attempts fail. */
  attempt: number;
  delayMs: number;
}

export interface SocketSettings {
  url: string;
  dispatchUrl: string | null;
  token: string | (() => string | Promise<string>);
  format: WireFormat;
  WebSocket: WebSocketConstructor;
  backoff: BackoffSettings;
  reconnectEnabled: boolean;
  random: () => number;
  /** How long the welcome (and a dispatch lookup) may take, in ms. */
  requestTimeoutMs: number;
  /**
   * Failed attempts in a row on addresses dispatch named before one attempt goes to `url` instead
   * (a dispatched address may be unreachable from where the client is).
   */
  dispatchFailuresBeforeFallback: number;
}

/** The frames the socket hands on, by type; `welcome`, `reconnect` and `pong` it handles itself. */
export type FrameHandlers = {
  [T in Exclude<ServerFrame['t'], 'welcome' | 'reconnect' | 'pong'>]?: (frame: Extract<ServerFrame, { t: T }>) => void;
} & {
  /** Any other type: private and group chat frames, and types of a newer protocol. */
  other(frame: { t: string }): void;
};

/** What the owner of the socket does when its connection changes. */
export interface SocketOwner {
  /** A connection is ready (state `open`): rejoin, resend, announce. */
  opened(welcome: WelcomeFrame): void;
  /** The connection (or an attempt) ended: fail what cannot outlive it. The socket reconnects or stops next. */
  lost(info: DisconnectInfo, error: ClientError): void;
  /** The socket gave up for good (4001, 4010, reconnection disabled, a bad URL): fail what was waiting. */
  stopped(error: ClientError): void;
  reconnecting(info: ReconnectInfo): void;
  /** A frame that could not be decoded, as the error frame the client reports for it. */
  undecodable(error: ErrorFrame): void;
}

type Timer = ReturnType<typeof setTimeout>;

interface ConnectWaiter { resolve(welcome: WelcomeFrame): void; reject(error: ClientError): void }

const noop = (): void => undefined;

export class ClientSocket {
  private currentState: ClientState = 'idle';
  private socket: WebSocketLike | null = null;
  private welcomeFrame: WelcomeFrame | null = null;
  /** Bumped by close() and by each connection attempt, so late callbacks of an older one do nothing. */
  private generation = 0;
  private connectWaiters: ConnectWaiter[] = [];
  private failedAttempts = 0;
  /** Attempts in a row on a dispatched address that ended before the welcome. */
  private dispatchedFailures = 0;
  /** Whether the current attempt goes to an address dispatch named (not to `url`). */
  private attemptDispatched = false;
  private openedAtMs = 0;
  /** When the server asked for a reconnect no sooner than (a `reconnect` frame); 0 when it did not. */
  private serverReconnectAtMs = 0;
  private reconnectTimer: Timer | null = null;
  private welcomeTimer: Timer | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private lastSentAtMs = 0;
  private lastReceivedAtMs = 0;
  private pingSentAtMs = 0;
  /** The last error frame that answered no request: it explains a close that follows (4001, 4000). */
  private connectionError: ErrorFrame | null = null;

  constructor(
    private readonly settings: SocketSettings,
    private readonly owner: SocketOwner,
    private readonly handlers: FrameHandlers,
  ) {}

  get state(): ClientState {
    return this.currentState;
  }

  get welcome(): WelcomeFrame | null {
    return this.welcomeFrame;
  }

  get isOpen(): boolean {
    return this.currentState === 'open';
  }

  /** Opens the connection (unless one is open or being opened) and resolves with its welcome. */
  connect(): Promise<WelcomeFrame> {
    if (this.currentState === 'open' && this.welcomeFrame) return Promise.resolve(this.welcomeFrame);
    const welcome = new Promise<WelcomeFrame>((resolve, reject) => this.connectWaiters.push({ resolve, reject }));
    if (this.currentState === 'idle' || this.currentState === 'closed') {
      this.failedAttempts = 0;
      this.serverReconnectAtMs = 0;
      void this.openSocket();
    }
    return welcome;
  }

  /**
   * Closes the connection for good (no reconnection) and rejects connect() with `error`. Returns
   * whether a WebSocket was open or opening; the owner settles everything else.
   */
  close(error: ClientError): boolean {
    const socket = this.socket;
    this.socket = null;
    this.currentState = 'closed';
    this.generation++;
    this.clearTimers();
    this.welcomeFrame = null;
    this.rejectConnectWaiters(error);
    socket?.close(CLOSE_NORMAL, 'client closed');
    return socket !== null;
  }

  /** An error frame no request claimed: kept, since it explains a close that may follow. */
  noteConnectionError(frame: ErrorFrame): void {
    this.connectionError = frame;
  }

  // ---- writing -------------------------------------------------------------------------------------

  /** Encodes a frame in the connection's wire format. */
  encode(frame: OutgoingFrame): Uint8Array | string {
    return encodeFrame(this.settings.format, frame);
  }

  /** Writes a frame on the open socket; false when there is none. */
  transmit(frame: OutgoingFrame): boolean {
    return this.write(this.encode(frame));
  }

  /** Writes an encoded frame on the open socket; false when there is none. */
  write(data: Uint8Array | string): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== WS_OPEN) return false;
    socket.send(data);
    this.lastSentAtMs = Date.now();
    return true;
  }

  // ---- opening and losing connections --------------------------------------------------------------

  private async openSocket(): Promise<void> {
    const { settings } = this;
    const generation = ++this.generation;
    this.currentState = 'connecting';
    this.connectionError = null;
    let token: string;
    try {
      token = typeof settings.token === 'string' ? settings.token : await settings.token();
    } catch (error) {
      if (generation === this.generation) this.connectionLost({ code: CLOSE_ABNORMAL, reason: `the token provider failed: ${messageOf(error)}` });
      return;
    }
    if (generation !== this.generation) return;
    this.attemptDispatched = false;
    // Without dispatch the socket opens synchronously (no await): nothing can happen in between.
    const url = settings.dispatchUrl ? await this.attemptUrl(settings.dispatchUrl, token) : settings.url;
    if (generation !== this.generation) return;
    let socket: WebSocketLike;
    try {
      socket = new settings.WebSocket(urlWithToken(url, token), settings.format === 'json' ? SUBPROTOCOL_JSON : SUBPROTOCOL_MSGPACK);
    } catch (error) {
      // A malformed URL: no retry can help.
      this.stop(new ClientError('bad_request', `cannot open a WebSocket to ${url}: ${messageOf(error)}`, { cause: error }));
      return;
    }
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    socket.onmessage = (event: MessageEventLike) => {
      if (this.socket === socket) this.onData(event.data);
    };
    socket.onclose = (event: CloseEventLike) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.connectionLost({ code: event.code, reason: event.reason });
    };
    // Every error event is followed by a close event, which carries what is known.
    socket.onerror = noop;
    this.welcomeTimer = setTimeout(() => {
      this.welcomeTimer = null;
      this.abandon(socket, { code: CLOSE_ABNORMAL, reason: `no welcome within ${settings.requestTimeoutMs} ms` });
    }, settings.requestTimeoutMs);
  }

  /**
   * Where an attempt connects when dispatch is configured: the gateway dispatch names, except
   * after `dispatchFailuresBeforeFallback` failed attempts in a row on dispatched addresses, when one
   * attempt goes to `url` (and the count starts over: the next attempt asks dispatch again, whether
   * this one succeeds or not, as the fleet may have changed meanwhile).
   */
  private async attemptUrl(dispatchUrl: string, token: string): Promise<string> {
    const { url, dispatchFailuresBeforeFallback } = this.settings;
    if (this.dispatchedFailures >= dispatchFailuresBeforeFallback) {
      this.dispatchedFailures = 0;
      return url;
    }
    const dispatched = await this.dispatchedUrl(dispatchUrl, token);
    this.attemptDispatched = dispatched !== null;
    return dispatched ?? url;
  }

  /** The gateway the dispatch endpoint names, or null when it cannot answer. */
  private async dispatchedUrl(dispatchUrl: string, token: string): Promise<string | null> {
    try {
      const response = await fetch(dispatchUrl, {
        headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(this.settings.requestTimeoutMs),
      });
      const body = (await response.json()) as { url?: unknown };
      if (response.ok && typeof body.url === 'string') return body.url;
    } catch {
      // The configured url is the fallback; the dispatch endpoint is an optimisation.
    }
    return null;
  }

  /** Drops a connection the client gave up on, without waiting for the closing handshake. */
  private abandon(socket: WebSocketLike, info: DisconnectInfo): void {
    if (this.socket !== socket) return;
    this.socket = null;
    socket.close(CLOSE_NORMAL, 'reconnecting');
    this.connectionLost(info);
  }

  /** The current connection (or attempt) ended: the owner settles what cannot survive it, then reconnect or stop. */
  private connectionLost(info: DisconnectInfo): void {
    const upForMs = this.welcomeFrame ? Date.now() - this.openedAtMs : 0;
    if (!this.welcomeFrame && this.attemptDispatched) this.dispatchedFailures++;
    this.attemptDispatched = false;
    this.clearTimers();
    this.welcomeFrame = null;
    const detail = info.reason ? `${info.code}: ${info.reason}` : `${info.code}`;
    const lost = new ClientError('unavailable', `the connection was lost (${detail})`);
    this.owner.lost(info, lost);
    if (this.currentState === 'closed') return; // a listener called close()
    if (info.code === CLOSE_UNAUTHORIZED) {
      const refused = this.connectionError?.code === 'unauthorized' ? this.connectionError.message : info.reason || 'the token was refused';
      this.stop(new ClientError('unauthorized', refused));
      return;
    }
    if (info.code === CLOSE_DEVICE_REPLACED) {
      // Reconnecting would replace the newer login in turn: leave it to the application.
      this.stop(new ClientError('device_replaced'));
      return;
    }
    if (!this.settings.reconnectEnabled) {
      this.stop(lost);
      return;
    }
    if (upForMs >= STABLE_CONNECTION_MS) this.failedAttempts = 0;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const backoffMs = fullJitterDelayMs(this.failedAttempts, this.settings.backoff, this.settings.random);
    const delayMs = Math.max(backoffMs, this.serverReconnectAtMs - Date.now());
    this.failedAttempts++;
    this.currentState = 'reconnecting';
    const generation = this.generation;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (generation === this.generation) void this.openSocket();
    }, delayMs);
    this.owner.reconnecting({ attempt: this.failedAttempts, delayMs });
  }

  /** Gives up connecting (4001, reconnection disabled, a bad URL). */
  private stop(error: ClientError): void {
    this.currentState = 'closed';
    this.generation++;
    this.clearTimers();
    this.owner.stopped(error);
    this.rejectConnectWaiters(error);
  }

  private rejectConnectWaiters(error: ClientError): void {
    const waiters = this.connectWaiters;
    this.connectWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  private clearTimers(): void {
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.welcomeTimer = this.reconnectTimer = this.heartbeatTimer = null;
  }

  // ---- frames from the server ----------------------------------------------------------------------

  private onData(data: unknown): void {
    this.lastReceivedAtMs = Date.now();
    let frame: unknown;
    try {
      frame = typeof data === 'string' ? decodeJson(data) : decodeMsgpack(bytesOf(data));
    } catch (error) {
      this.owner.undecodable({ t: 'error', code: 'bad_frame', message: `undecodable frame from the server: ${messageOf(error)}` });
      return;
    }
    if (typeof frame !== 'object' || frame === null || typeof (frame as { t?: unknown }).t !== 'string') {
      this.owner.undecodable({ t: 'error', code: 'bad_frame', message: "a frame from the server is not a map with a string 't'" });
      return;
    }
    this.dispatch(frame as ServerFrame);
  }

  private dispatch(frame: ServerFrame): void {
    switch (frame.t) {
      case 'welcome': this.onWelcome(frame); return;
      case 'reconnect': this.onReconnectRequest(frame); return;
      case 'pong': return; // its arrival is what the heartbeat waits for
      default: {
        const handler = this.handlers[frame.t] as ((frame: ServerFrame) => void) | undefined;
        if (handler) handler(frame);
        else this.handlers.other(frame);
      }
    }
  }

  private onWelcome(frame: WelcomeFrame): void {
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    this.welcomeTimer = null;
    this.welcomeFrame = frame;
    this.dispatchedFailures = 0;
    this.currentState = 'open';
    this.openedAtMs = this.lastReceivedAtMs;
    this.serverReconnectAtMs = 0;
    this.startHeartbeat(frame.heartbeatMs);
    // Settled first, so a listener of what opened() announces cannot turn them into failures.
    const waiters = this.connectWaiters;
    this.connectWaiters = [];
    for (const waiter of waiters) waiter.resolve(frame);
    this.owner.opened(frame);
  }

  private onReconnectRequest(frame: ReconnectFrame): void {
    const socket = this.socket;
    // Without reconnection, the server's close that follows ends the client anyway.
    if (!socket || !this.settings.reconnectEnabled) return;
    const delayMs = Math.max(0, Number(frame.delayMs) || 0);
    this.serverReconnectAtMs = Date.now() + delayMs;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.abandon(socket, { code: CLOSE_SERVICE_RESTART, reason: 'the server asked for a reconnect' });
    }, delayMs);
  }

  // ---- heartbeat -----------------------------------------------------------------------------------

  /**
   * Pings when nothing has been sent for three quarters of heartbeatMs, which keeps the server's idle
   * timeout away and comes before the server's own ping (due after heartbeatMs of silence, so keepalive
   * is not paid twice), or when nothing has arrived for half of it, to find a dead peer in a quiet
   * room; and drops a connection whose ping goes unanswered for heartbeatMs (a dead peer the TCP
   * connection does not notice). Judging from the outstanding ping, not from the last frame, keeps
   * throttled timers (background tabs) from mistaking a quiet room for a dead connection.
   */
  private startHeartbeat(heartbeatMs: number): void {
    if (!(typeof heartbeatMs === 'number' && heartbeatMs > 0)) return;
    const socket = this.socket;
    if (!socket) return;
    this.pingSentAtMs = 0;
    this.heartbeatTimer = setInterval(() => {
      if (this.socket !== socket) return;
      const now = Date.now();
      if (this.pingSentAtMs > this.lastReceivedAtMs) {
        if (now - this.pingSentAtMs >= heartbeatMs) this.abandon(socket, { code: CLOSE_ABNORMAL, reason: `no answer to a ping within ${heartbeatMs} ms` });
        return;
      }
      if (now - this.lastSentAtMs >= heartbeatMs * 0.75 || now - this.lastReceivedAtMs >= heartbeatMs / 2) {
        if (this.transmit({ t: 'ping', ts: now })) this.pingSentAtMs = now;
      }
    }, Math.max(MIN_HEARTBEAT_TICK_MS, heartbeatMs / 4));
  }
}

function urlWithToken(url: string, token: string): string {
  const target = new URL(url);
  target.searchParams.set('token', token);
  return target.toString();
}

function bytesOf(data: unknown): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('a binary frame arrived in an unexpected form (binaryType must be arraybuffer)');
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
