/**
 * The only file that imports uWebSockets.js. All uWS rules live here: the upgrade happens inside the
 * `upgrade` callback itself (an upgrade deferred past an await, even corked, can make uWS close an
 * unrelated connection while many connect at once), the token is checked once the socket is open,
 * `onAborted` is handled, writes are corked, `maxPayloadLength` and `maxBackpressure` are set
 * explicitly, and every send's result is looked at. The rest of the gateway sees `Conn` and
 * `Publisher`, never a uWS type.
 */
import { createRequire } from 'node:module';
import type * as Uws from 'uWebSockets.js';
import { closeCodeOf, fail, RoomcastError } from '../shared/errors.js';
import type { Identity } from '../shared/auth.js';
import { SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, type WireFormat } from '../shared/protocol/frames.js';

const require = createRequire(import.meta.url);

/**
 * Loads the native binding and refuses the slow pure-JS fallback that the package silently switches
 * to when its binary does not load on this platform.
 */
export function loadNativeUws(): typeof Uws {
  if (process.env.UWS_USE_FALLBACK) {
    throw new Error('UWS_USE_FALLBACK is set: the gateway runs only on the native uWebSockets.js binding');
  }
  const uws = require('uWebSockets.js') as typeof Uws;
  if (!isNativeBinding(uws)) {
    throw new Error(
      `uWebSockets.js did not load its native binding for Node ABI ${process.versions.modules} on ${process.platform}-${process.arch}; ` +
      'the gateway will not run on the slow JavaScript fallback (use Node.js 20 on linux-x64, darwin or win32)',
    );
  }
  return uws;
}

export function isNativeBinding(uws: typeof Uws): boolean {
  return String(uws.App).includes('[native code]');
}

export type SendResult = 'sent' | 'buffered' | 'dropped';

/** One client connection, as the session logic sees it. */
export interface Conn {
  readonly id: string;
  readonly identity: Identity;
  readonly format: WireFormat;
  readonly closed: boolean;
  send(data: Uint8Array | string): SendResult;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  bufferedBytes(): number;
  /** Closes with a close frame carrying `code` and `reason`. */
  end(code: number, reason: string): void;
  /** When the client last sent anything (a frame, a ping or a pong), by the server's clock. */
  readonly lastHeardMs: number;
  /** Sends a WebSocket ping control frame: any client library answers it with a pong. */
  ping(): void;
  /** Runs `write` with the connection corked: what it sends goes out in one socket write. */
  cork(write: () => void): void;
  /**
   * Publishes `data` to every other subscriber of `topic`, in C++; false (and nothing published) when
   * this connection is not on the topic.
   */
  publishToOthers(topic: string, data: Uint8Array | string): boolean;
}

export interface Publisher {
  /** Writes `data` to every connection subscribed to `topic`, in C++. */
  publish(topic: string, data: Uint8Array | string): void;
}

/**
 * What the gateway does with connections. `S` is what it keeps per connection: the connection carries
 * it (as uWS carries its user data), so the gateway needs no second map of every open connection.
 */
export interface ConnectionHandlers<S extends object> {
  /** Whether new connections are accepted (false while draining). */
  accepting(): boolean;
  /** The identity of a token, at once or later; throws or rejects with UnauthorizedError. */
  authenticate(token: string | null): Identity | Promise<Identity>;
  /** Returns the state kept for the connection; it comes back with each of the connection's frames. */
  opened(conn: Conn): S;
  /** `data` is only valid during the call. */
  message(conn: Conn, state: S, data: ArrayBuffer, isBinary: boolean): void;
  closed(conn: Conn, code: number): void;
  /** Every connection's close, authenticated or not, with the close code (for the metrics). */
  ended(code: number): void;
  /** A connection that failed authentication: send the error and close. */
  rejected(conn: Conn, error: RoomcastError): void;
}

export interface HttpHandlers {
  metrics(): Promise<{ contentType: string; body: string }>;
  healthy(): boolean;
  ready(): boolean;
}

/** What the WebSocket port serves over plain HTTP besides `/ws`: the built pages, and the dev sign-in. */
export interface PageHandlers {
  /** A built file for a request path (`/`, `/console`, `/assets/...`), or undefined. */
  lookup(path: string): { body: Uint8Array; contentType: string; cacheControl: string } | undefined;
  /** Whether the pages were built at all; when not, page routes answer 404 with `missingText`. */
  readonly built: boolean;
  readonly missingText: string;
  /** The Content-Security-Policy of every page response. */
  readonly csp: string;
  /**
   * Signs a viewer token for any uid (all-in-one's dev sign-in, `GET /dev/token?uid=`); null when the
   * sign-in is off, and the route answers 404. Rejects with a RoomcastError for a bad uid.
   */
  devToken: ((uid: string) => Promise<string>) | null;
}

export interface UwsServerOptions<S extends object> {
  host: string;
  wsPort: number;
  httpPort: number;
  /**
   * The largest message uWS reads at all; a larger one drops the connection without a close frame.
   * The session refuses anything over the protocol's limit itself, with an error and 1009.
   */
  maxReadBytes: number;
  maxBackpressureBytes: number;
  /** uWS's own inactivity limit, a backstop behind the gateway's idle check (4008). */
  backstopIdleTimeoutS: number;
  /** Connections one client address may hold; 0: no limit. */
  maxConnectionsPerIp: number;
  /** Origins whose pages may open a WebSocket; empty: any. The gateway's own origin always may. */
  allowedOrigins: readonly string[];
  connections: ConnectionHandlers<S>;
  http: HttpHandlers;
  pages: PageHandlers;
}

/** uWS copies these onto its socket object, where they stay for the connection's life. */
interface UserData<S extends object> {
  conn: UwsConn<S> | null;
  token: string | null;
  format: WireFormat;
  /** The client's address, when connections are counted per address. */
  address: string | null;
}

/** The longest idle timeout uWS accepts. */
export const UWS_MAX_IDLE_TIMEOUT_S = 960;

/** Frames a client may send before its token is checked; they are handled right after the welcome. */
export const MAX_FRAMES_BEFORE_WELCOME = 16;

let nextConnNumber = 0;

class UwsConn<S extends object> implements Conn {
  readonly id: string;
  closed = false;
  /** Set once the token is checked; the rest of the gateway sees the connection only after that. */
  identity!: Identity;
  /** Frames (copied) that arrived while the token was being checked; null once it was. */
  early: Array<{ data: ArrayBuffer; isBinary: boolean }> | null = [];
  /** What the handlers keep for this connection; set once it is opened. */
  state: S | undefined = undefined;
  lastHeardMs = Date.now();

  constructor(
    private readonly ws: Uws.WebSocket<UserData<S>>,
    readonly format: WireFormat,
    idPrefix: string,
  ) {
    this.id = `${idPrefix}${(nextConnNumber++).toString(36)}`;
  }

  send(data: Uint8Array | string): SendResult {
    if (this.closed) return 'dropped';
    const status = this.ws.send(data, this.format === 'msgpack');
    return status === 1 ? 'sent' : status === 0 ? 'buffered' : 'dropped';
  }

  subscribe(topic: string): void {
    if (!this.closed) this.ws.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    if (!this.closed) this.ws.unsubscribe(topic);
  }

  bufferedBytes(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount();
  }

  end(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.end(code, reason);
  }

  ping(): void {
    if (!this.closed) this.ws.ping();
  }

  cork(write: () => void): void {
    if (!this.closed) this.ws.cork(write);
  }

  publishToOthers(topic: string, data: Uint8Array | string): boolean {
    if (this.closed || !this.ws.isSubscribed(topic)) return false;
    this.ws.publish(topic, data, typeof data !== 'string');
    return true;
  }
}

export class UwsServer<S extends object> implements Publisher {
  private readonly listenSockets: Uws.us_listen_socket[] = [];
  private readonly open = new Set<UwsConn<S>>();
  /** Open connections per client address (only while a per-address cap is set). */
  private readonly perAddress = new Map<string, number>();
  wsPort = 0;
  httpPort = 0;

  private constructor(private readonly uws: typeof Uws, private readonly app: Uws.TemplatedApp, private readonly httpApp: Uws.TemplatedApp) {}

  static async start<S extends object>(options: UwsServerOptions<S>, idPrefix: string): Promise<UwsServer<S>> {
    const uws = loadNativeUws();
    const server = new UwsServer<S>(uws, uws.App(), uws.App());
    server.routeWebSocket(options, idPrefix);
    server.routePages(options.pages);
    server.routeHttp(options.http);
    server.wsPort = await server.listen(server.app, options.host, options.wsPort);
    server.httpPort = await server.listen(server.httpApp, options.host, options.httpPort);
    return server;
  }

  publish(topic: string, data: Uint8Array | string): void {
    this.app.publish(topic, data, typeof data !== 'string');
  }

  get connectionCount(): number {
    return this.open.size;
  }

  /** Every open connection, for draining. */
  connections(): Iterable<Conn> {
    return this.open;
  }

  /** Stops listening and closes every connection with `code`. */
  close(code: number, reason: string): void {
    for (const socket of this.listenSockets.splice(0)) this.uws.us_listen_socket_close(socket);
    for (const conn of [...this.open]) conn.end(code, reason);
  }

  private listen(app: Uws.TemplatedApp, host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      app.listen(host, port, (socket) => {
        if (!socket) { reject(new Error(`cannot listen on ${host}:${port}`)); return; }
        this.listenSockets.push(socket);
        resolve(this.uws.us_socket_local_port(socket));
      });
    });
  }

  private routeWebSocket(options: UwsServerOptions<S>, idPrefix: string): void {
    const handlers = options.connections;
    const received = (conn: UwsConn<S>, data: ArrayBuffer, isBinary: boolean) => {
      if (!conn.closed && conn.state !== undefined) handlers.message(conn, conn.state, data, isBinary);
    };
    const { maxConnectionsPerIp } = options;
    const allowedOrigins = new Set(options.allowedOrigins);
    this.app.ws<UserData<S>>('/ws', {
      maxPayloadLength: options.maxReadBytes,
      maxBackpressure: options.maxBackpressureBytes,
      // Past the limit uWS would skip the connection's messages without a trace: close it instead.
      closeOnBackpressureLimit: 1,
      // The gateway pings and closes idle connections itself, with 4008 (IdleConnections).
      idleTimeout: options.backstopIdleTimeoutS,
      sendPingsAutomatically: false,
      compression: this.uws.DISABLED,

      upgrade: (res, req, context) => {
        if (!handlers.accepting()) {
          res.writeStatus('503 Service Unavailable').writeHeader('Retry-After', '1').end('draining');
          return;
        }
        const origin = req.getHeader('origin');
        if (allowedOrigins.size > 0 && origin !== '' && !allowedOrigins.has(origin) && !isSameOrigin(origin, req.getHeader('host'))) {
          res.writeStatus('403 Forbidden').end('this origin may not connect');
          return;
        }
        const address = maxConnectionsPerIp > 0 ? Buffer.from(res.getRemoteAddressAsText()).toString() : null;
        if (address !== null && (this.perAddress.get(address) ?? 0) >= maxConnectionsPerIp) {
          res.writeStatus('429 Too Many Requests').writeHeader('Retry-After', '10').end('too many connections from this address');
          return;
        }
        const negotiated = negotiateSubprotocol(req.getHeader('sec-websocket-protocol'));
        if (!negotiated) {
          res.writeStatus('400 Bad Request').end(`unsupported subprotocol; offer ${SUBPROTOCOL_MSGPACK} or ${SUBPROTOCOL_JSON}`);
          return;
        }
        const userData: UserData<S> = {
          conn: null,
          token: req.getQuery('token') || bearerToken(req.getHeader('authorization')),
          format: negotiated.format,
          address,
        };
        res.upgrade(userData, req.getHeader('sec-websocket-key'), negotiated.header, req.getHeader('sec-websocket-extensions'), context);
      },

      open: (ws) => {
        const data = ws.getUserData();
        const conn = new UwsConn(ws, data.format, idPrefix);
        data.conn = conn;
        if (data.address !== null) this.perAddress.set(data.address, (this.perAddress.get(data.address) ?? 0) + 1);
        const token = data.token;
        data.token = null;
        const accept = (identity: Identity) => {
          if (conn.closed) return;
          conn.identity = identity;
          this.open.add(conn);
          conn.cork(() => { conn.state = handlers.opened(conn); });
          const early = conn.early ?? [];
          conn.early = null;
          for (const frame of early) conn.cork(() => received(conn, frame.data, frame.isBinary));
        };
        const refuse = (error: unknown) => {
          if (conn.closed) return;
          conn.early = null;
          conn.identity = ANONYMOUS;
          const failure = error instanceof RoomcastError ? error : fail.unauthorized('invalid token', { cause: error });
          conn.cork(() => handlers.rejected(conn, failure));
        };
        let identity: Identity | Promise<Identity>;
        try {
          identity = handlers.authenticate(token);
        } catch (error) {
          refuse(error);
          return;
        }
        // A token checked at once is welcomed in the same write as the upgrade's response.
        if (identity instanceof Promise) identity.then(accept, refuse);
        else accept(identity);
      },

      message: (ws, message, isBinary) => {
        const conn = ws.getUserData().conn;
        if (!conn || conn.closed) return;
        conn.lastHeardMs = Date.now();
        if (conn.early) {
          // The token is still being checked: keep a copy (uWS reuses `message` after this call).
          if (conn.early.length >= MAX_FRAMES_BEFORE_WELCOME) conn.end(closeCodeOf('too_many_errors')!, 'too many frames before the welcome');
          else conn.early.push({ data: message.slice(0), isBinary });
          return;
        }
        received(conn, message, isBinary);
      },

      ping: (ws) => { heard(ws); },
      pong: (ws) => { heard(ws); },

      close: (ws, code) => {
        const data = ws.getUserData();
        const conn = data.conn;
        handlers.ended(code);
        if (!conn) return;
        conn.closed = true;
        if (data.address !== null) this.forgetAddress(data.address);
        if (this.open.delete(conn)) handlers.closed(conn, code);
      },
    });
  }

  /**
   * Plain GETs on the WebSocket port: the pages at `/` and `/console` and their assets (same origin as
   * `/ws`, so the pages need no CORS and the CSP can say 'self'), and the dev sign-in when it is on.
   * Files are in memory; each answer is written at once, corked.
   */
  private routePages(pages: PageHandlers): void {
    const securityHeaders = (res: Uws.HttpResponse): Uws.HttpResponse => res
      .writeHeader('Content-Security-Policy', pages.csp)
      .writeHeader('X-Content-Type-Options', 'nosniff')
      .writeHeader('Referrer-Policy', 'no-referrer');
    const plain = (res: Uws.HttpResponse, status: string, text: string): void => {
      res.cork(() => securityHeaders(res.writeStatus(status)).writeHeader('Content-Type', 'text/plain; charset=utf-8')
        .writeHeader('Cache-Control', 'no-store').end(text));
    };

    // Whether the sign-in is on, for the viewer page to offer it or not (200 either way: no console error).
    this.app.get('/dev/sign-in', (res) => {
      res.onAborted(noop);
      res.cork(() => securityHeaders(res.writeStatus('200 OK')).writeHeader('Content-Type', 'application/json')
        .writeHeader('Cache-Control', 'no-store').end(JSON.stringify({ enabled: pages.devToken !== null })));
    });

    this.app.get('/dev/token', (res, req) => {
      let aborted = false;
      res.onAborted(() => { aborted = true; });
      const devToken = pages.devToken;
      if (!devToken) { plain(res, '404 Not Found', 'the dev sign-in is off (it is only on in roomcast all-in-one)\n'); return; }
      const uid = new URLSearchParams(req.getQuery() ?? '').get('uid') ?? '';
      devToken(uid).then((token) => {
        if (aborted) return;
        res.cork(() => securityHeaders(res.writeStatus('200 OK')).writeHeader('Content-Type', 'application/json')
          .writeHeader('Cache-Control', 'no-store').end(JSON.stringify({ token, uid, role: 'viewer' })));
      }, (error: unknown) => {
        if (aborted) return;
        const failure = error instanceof RoomcastError ? error : null;
        const body = JSON.stringify({ error: { code: failure?.code ?? 'internal', message: failure?.message ?? 'signing the token failed' } });
        res.cork(() => securityHeaders(res.writeStatus(failure ? '400 Bad Request' : '500 Internal Server Error'))
          .writeHeader('Content-Type', 'application/json').writeHeader('Cache-Control', 'no-store').end(body));
      });
    });

    this.app.get('/*', (res, req) => {
      // Answered within this call, so an abort can only come before it; uWS still wants the handler.
      res.onAborted(noop);
      const path = req.getUrl();
      const file = pages.lookup(path);
      if (file) {
        res.cork(() => securityHeaders(res.writeStatus('200 OK')).writeHeader('Content-Type', file.contentType)
          .writeHeader('Cache-Control', file.cacheControl).end(file.body));
        return;
      }
      plain(res, '404 Not Found', pages.built ? 'not found\n' : pages.missingText);
    });
  }

  private forgetAddress(address: string): void {
    const count = (this.perAddress.get(address) ?? 1) - 1;
    if (count > 0) this.perAddress.set(address, count);
    else this.perAddress.delete(address);
  }

  private routeHttp(http: HttpHandlers): void {
    this.httpApp.get('/metrics', (res) => {
      let aborted = false;
      res.onAborted(() => { aborted = true; });
      http.metrics().then(({ contentType, body }) => {
        if (!aborted) res.cork(() => res.writeHeader('Content-Type', contentType).end(body));
      }, (error: unknown) => {
        if (!aborted) res.cork(() => res.writeStatus('500 Internal Server Error').end(String(error)));
      });
    });
    const probe = (check: () => boolean) => (res: Uws.HttpResponse) => {
      const ok = check();
      res.cork(() => res.writeStatus(ok ? '200 OK' : '503 Service Unavailable').writeHeader('Content-Type', 'text/plain').end(ok ? 'ok' : 'not ready'));
    };
    this.httpApp.get('/healthz', probe(() => http.healthy()));
    this.httpApp.get('/readyz', probe(() => http.ready()));
    this.httpApp.any('/*', (res) => {
      res.cork(() => res.writeStatus('404 Not Found').end('not found'));
    });
  }
}

const noop = (): void => undefined;

function heard(ws: Uws.WebSocket<UserData<object>>): void {
  const conn = ws.getUserData().conn;
  if (conn) conn.lastHeardMs = Date.now();
}

/** A page served by this gateway itself (its origin names the host the request came to). */
function isSameOrigin(origin: string, host: string): boolean {
  const schemeEnd = origin.indexOf('://');
  return schemeEnd > 0 && host !== '' && origin.slice(schemeEnd + 3) === host;
}

/** The identity of a connection whose token failed, for the error frame and close that follow. */
const ANONYMOUS: Identity = { uid: '', role: 'viewer', device: '' };

function bearerToken(header: string): string | null {
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match ? match[1]! : null;
}

/** Picks the first subprotocol of ours the client offers; msgpack when it offers none. */
function negotiateSubprotocol(offered: string): { format: WireFormat; header: string } | null {
  if (offered.trim() === '') return { format: 'msgpack', header: '' };
  for (const name of offered.split(',').map((item) => item.trim())) {
    if (name === SUBPROTOCOL_MSGPACK) return { format: 'msgpack', header: name };
    if (name === SUBPROTOCOL_JSON) return { format: 'json', header: name };
  }
  return null;
}
