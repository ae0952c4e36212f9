/**
 * The HTTP server API for backends (API key) and the streamer console (streamer, moderator or admin
 * token): rooms, backend messages (gifts, system), history, moderation. JSON in and out; every error
 * is `{ "error": { "code", "message" } }` with the status from the error table.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { canModerate, isUid, type Identity, type TokenVerifier } from '../shared/auth.js';
import { decodeJson } from '../shared/codec/codec.js';
import { fail, httpStatusOf, toRoomcastError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { RoomServiceMetrics } from '../shared/metrics.js';
import { PRIORITY_HIGH, PRIORITY_LOW, isRoomId, type RoomId } from '../shared/protocol/frames.js';
import type { GatewayDispatch } from './gateway-dispatch.js';
import { MAX_SLOW_MODE_MS, moderationDuration, requireModeratedUid, slowModeInterval } from './moderation.js';
import type { RoomService } from './room-service.js';
import { closeNow, listenOn } from './node-http.js';

/** Largest request body accepted. */
export const MAX_BODY_BYTES = 64 * 1024;
/** Larger headers are answered 431 by Node itself. */
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_HEADERS = 100;
const HEADERS_TIMEOUT_MS = 5_000;
/**
 * Node looks for requests past their timeout only every `connectionsCheckingInterval` (30 s unless
 * told), so a timeout fires up to that late; checking four times per headers timeout keeps it close.
 */
const TIMEOUT_CHECKS_PER_HEADERS_TIMEOUT = 4;

export interface HttpApiDeps {
  service: RoomService;
  dispatch: GatewayDispatch;
  verifyToken: TokenVerifier | null;
  apiKeys: readonly string[];
  metrics: RoomServiceMetrics;
  log: Logger;
  limits: HttpApiLimits;
  ready: () => boolean;
  /** Endpoints outside /v1/rooms (private and group chat), matched on the whole path. */
  extraRoutes?: readonly PathRoute[];
}

export interface HttpApiLimits {
  /** A request's headers and body must arrive within this (a slow, trickling client is cut off). */
  requestTimeoutMs: number;
  /** Open connections; more are refused at once. */
  maxConnections: number;
}

/** An endpoint matched on the whole path; its handler authorizes the principal itself. */
export interface PathRoute {
  method: string;
  pattern: RegExp;
  name: string;
  handle(request: { principal: Principal; params: string[]; query: URLSearchParams; body: Record<string, unknown> }): Promise<{ status: number; body: unknown }>;
}

/** Who is calling: a backend with an API key, or a person with a token. */
export type Principal = { kind: 'backend' } | { kind: 'user'; identity: Identity };

interface Request {
  principal: Principal;
  room: RoomId;
  params: string[];
  query: URLSearchParams;
  body: Record<string, unknown>;
}

type Permission = 'read' | 'create' | 'moderate' | 'publish';

interface Route {
  method: string;
  /** Matched against the path after /v1/rooms/{room}; groups become `params`. */
  pattern: RegExp;
  name: string;
  permission: Permission;
  handle(request: Request): Promise<{ status: number; body: unknown }>;
}

export class HttpApi {
  private server: Server | null = null;
  private readonly routes: Route[];

  constructor(private readonly deps: HttpApiDeps) {
    this.routes = buildRoutes(deps.service);
  }

  async listen(host: string, port: number): Promise<number> {
    const { requestTimeoutMs, maxConnections } = this.deps.limits;
    const headersTimeoutMs = Math.min(requestTimeoutMs, HEADERS_TIMEOUT_MS);
    const server = createServer({
      requestTimeout: requestTimeoutMs,
      headersTimeout: headersTimeoutMs,
      connectionsCheckingInterval: Math.ceil(headersTimeoutMs / TIMEOUT_CHECKS_PER_HEADERS_TIMEOUT),
      maxHeaderSize: MAX_HEADER_BYTES,
    }, (req, res) => {
      // handle() answers every failure itself; this catches what escapes the answer (a broken socket).
      this.handle(req, res).catch((error: unknown) => {
        this.deps.log.error('http request failed after its answer began', { error });
        res.destroy();
      });
    });
    server.maxConnections = maxConnections;
    server.maxHeadersCount = MAX_HEADERS;
    this.server = server;
    return listenOn(server, host, port);
  }

  close(): Promise<void> {
    return closeNow(this.server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let routeName = 'unknown';
    try {
      const url = parseTarget(req.url ?? '');
      if (req.method === 'GET' && url.pathname === '/healthz') return this.reply(res, routeName = 'healthz', 200, { ok: true });
      if (req.method === 'GET' && url.pathname === '/readyz') {
        const ready = this.deps.ready();
        return this.reply(res, routeName = 'readyz', ready ? 200 : 503, { ready });
      }
      if (url.pathname === '/v1/gateway') {
        routeName = 'gateway';
        if (req.method !== 'GET') throw fail.method_not_allowed(req.method, ['GET']);
        await this.authenticate(req);
        const gateway = this.deps.dispatch.choose();
        if (!gateway) throw fail.unavailable('no gateway is ready; try again shortly');
        return this.reply(res, routeName, 200, { url: gateway.url, gatewayId: gateway.gatewayId });
      }
      const extra = (this.deps.extraRoutes ?? []).filter((candidate) => candidate.pattern.test(url.pathname));
      if (extra.length > 0) {
        const route = extra.find((candidate) => candidate.method === req.method);
        if (!route) throw fail.method_not_allowed(req.method, extra.map((c) => c.method));
        routeName = route.name;
        const principal = await this.authenticate(req);
        const body = await readJsonBody(req);
        const params = route.pattern.exec(url.pathname)!.slice(1).map(decodePathPart);
        const result = await route.handle({ principal, params, query: url.searchParams, body });
        return this.reply(res, routeName, result.status, result.body);
      }
      const match = /^\/v1\/rooms\/([^/]+)(\/.*)?$/.exec(url.pathname);
      if (!match) throw fail.not_found(`no such endpoint: ${url.pathname.slice(0, 100)}`);
      const room = decodePathPart(match[1]!);
      const rest = match[2] ?? '';
      const candidates = this.routes.filter((route) => route.pattern.test(rest));
      const route = candidates.find((candidate) => candidate.method === req.method);
      if (!route) {
        if (candidates.length > 0) throw fail.method_not_allowed(req.method, candidates.map((c) => c.method));
        throw fail.not_found(`no such endpoint: ${url.pathname.slice(0, 100)}`);
      }
      routeName = route.name;
      const principal = await this.authenticate(req);
      if (!isRoomId(room)) throw fail.bad_room();
      authorize(principal, route.permission, room);
      const body = await readJsonBody(req);
      const params = route.pattern.exec(rest)!.slice(1).map(decodePathPart);
      const result = await route.handle({ principal, room, params, query: url.searchParams, body });
      this.reply(res, routeName, result.status, result.body);
    } catch (error) {
      const failure = toRoomcastError(error);
      if (failure.code === 'internal') this.deps.log.error('http request failed', { route: routeName, error });
      this.reply(res, routeName, httpStatusOf(failure.code), { error: { code: failure.code, message: failure.message } });
    }
  }

  private reply(res: ServerResponse, route: string, status: number, body: unknown): void {
    this.deps.metrics.httpRequest(route, status);
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  }

  private async authenticate(req: IncomingMessage): Promise<Principal> {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw fail.unauthorized('send Authorization: Bearer <API key or token>');
    const credential = match[1]!;
    if (this.deps.apiKeys.some((key) => sameSecret(key, credential))) return { kind: 'backend' };
    if (!this.deps.verifyToken) throw fail.unauthorized('unknown API key');
    return { kind: 'user', identity: await this.deps.verifyToken(credential) };
  }
}

/**
 * The request target as path and query. Only origin-form targets (`/path?query`) are served; the path
 * stays percent-encoded until a route has matched, so an escaped `/` cannot change which route matches.
 */
function parseTarget(target: string): { pathname: string; searchParams: URLSearchParams } {
  if (!target.startsWith('/') || target.startsWith('//')) throw fail.bad_request('the request target must be a path such as /v1/rooms/lobby');
  const queryAt = target.indexOf('?');
  return queryAt < 0
    ? { pathname: target, searchParams: new URLSearchParams() }
    : { pathname: target.slice(0, queryAt), searchParams: new URLSearchParams(target.slice(queryAt + 1)) };
}

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw fail.bad_request('the path holds a malformed percent-escape');
  }
}

function sameSecret(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Backends may do anything; admins too; streamers and moderators moderate their own rooms. */
function authorize(principal: Principal, permission: Permission, room: RoomId): void {
  if (principal.kind === 'backend' || principal.identity.role === 'admin') return;
  const { identity } = principal;
  if (permission === 'read') return;
  if (permission === 'publish') throw fail.forbidden('only backends and admins publish gifts and system messages');
  if (permission === 'create' && identity.role !== 'streamer') throw fail.forbidden('only streamers, admins and backends create rooms');
  if (!canModerate(identity, room)) throw fail.forbidden(`a ${identity.role} may not moderate room '${room}'`);
}

async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw fail.frame_too_large(MAX_BODY_BYTES);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (contentType !== 'application/json') throw fail.unsupported_media_type();
  let parsed: unknown;
  try {
    // The frames' JSON rules: UTF-8, and no half of a surrogate pair in a string (it would reach msgpack viewers).
    parsed = decodeJson(Buffer.concat(chunks));
  } catch {
    throw fail.bad_request('the body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw fail.bad_request('the body must be a JSON object');
  return parsed as Record<string, unknown>;
}

// ---- field checks --------------------------------------------------------------------------------

function optionalInteger(source: Record<string, unknown> | URLSearchParams, field: string, min: number, max: number): number | undefined {
  const raw = source instanceof URLSearchParams ? source.get(field) ?? undefined : source[field];
  if (raw === undefined || raw === null) return undefined;
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw fail.bad_request(`'${field}' must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** Who a moderation action is recorded as: the token's user, or `system` for a backend. */
function actorOf(principal: Principal): string {
  return principal.kind === 'backend' ? 'system' : principal.identity.uid;
}

function buildRoutes(service: RoomService): Route[] {
  const route = (method: string, pattern: RegExp, name: string, permission: Permission, handle: Route['handle']): Route =>
    ({ method, pattern, name, permission, handle });
  return [
    route('PUT', /^\/?$/, 'room_put', 'create', async ({ room, body }) => {
      const slowModeMs = optionalInteger(body, 'slowModeMs', 0, MAX_SLOW_MODE_MS);
      const result = await service.createRoom(room, slowModeMs === undefined ? {} : { slowModeMs });
      return { status: result.created ? 201 : 200, body: result.room };
    }),
    route('GET', /^\/?$/, 'room_get', 'read', async ({ room }) => ({ status: 200, body: await service.getRoom(room) })),
    route('POST', /^\/messages$/, 'messages_post', 'publish', async ({ room, body }) => {
      const { kind, text = '', uid = 'system', data, priority, id } = body;
      if (kind !== 'gift' && kind !== 'system') throw fail.bad_request("'kind' must be gift or system");
      if (typeof text !== 'string') throw fail.bad_request("'text' must be a string");
      if (typeof uid !== 'string' || !isUid(uid)) throw fail.bad_request("'uid' must be a uid");
      if (data !== undefined && (typeof data !== 'object' || data === null || Array.isArray(data))) throw fail.bad_request("'data' must be an object");
      if (priority !== undefined && priority !== PRIORITY_LOW && priority !== PRIORITY_HIGH) throw fail.bad_request("'priority' must be 0 or 1");
      if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > 64)) throw fail.bad_request("'id' must be a string of 1 to 64 characters");
      const message = await service.publish(room, {
        kind, text, uid,
        ...(data === undefined ? {} : { data: data as Record<string, unknown> }),
        ...(priority === undefined ? {} : { prio: priority }),
        ...(id === undefined ? {} : { cid: id as string }),
      });
      return { status: 'duplicate' in message ? 200 : 201, body: message };
    }),
    route('GET', /^\/messages$/, 'messages_get', 'read', async ({ room, query }) => {
      const afterSeq = optionalInteger(query, 'afterSeq', 0, Number.MAX_SAFE_INTEGER);
      const beforeSeq = optionalInteger(query, 'beforeSeq', 1, Number.MAX_SAFE_INTEGER);
      const limit = optionalInteger(query, 'limit', 1, 100_000) ?? 50;
      const { msgs, lastSeq, firstSeq } = await service.history({
        room, limit, ...(afterSeq === undefined ? {} : { afterSeq }), ...(beforeSeq === undefined ? {} : { beforeSeq }),
      });
      return { status: 200, body: { msgs, lastSeq, firstSeq } };
    }),
    route('DELETE', /^\/messages\/(\d{1,15})$/, 'messages_delete', 'moderate', async ({ room, params, principal }) => {
      return { status: 200, body: await service.retract(room, Number(params[0]), actorOf(principal)) };
    }),
    route('PUT', /^\/mutes\/([^/]+)$/, 'mute_put', 'moderate', async ({ room, params, body }) => {
      await service.setMute(room, requireModeratedUid(params[0]), moderationDuration(body.durationMs));
      return { status: 200, body: { muted: true } };
    }),
    route('DELETE', /^\/mutes\/([^/]+)$/, 'mute_delete', 'moderate', async ({ room, params }) => {
      await service.setMute(room, requireModeratedUid(params[0]), null);
      return { status: 200, body: { muted: false } };
    }),
    route('PUT', /^\/bans\/([^/]+)$/, 'ban_put', 'moderate', async ({ room, params, body }) => {
      await service.setBan(room, requireModeratedUid(params[0]), moderationDuration(body.durationMs));
      return { status: 200, body: { banned: true } };
    }),
    route('DELETE', /^\/bans\/([^/]+)$/, 'ban_delete', 'moderate', async ({ room, params }) => {
      await service.setBan(room, requireModeratedUid(params[0]), null);
      return { status: 200, body: { banned: false } };
    }),
    route('PUT', /^\/slow-mode$/, 'slow_mode_put', 'moderate', async ({ room, body, principal }) => {
      const intervalMs = slowModeInterval(body.intervalMs);
      await service.setSlowMode(room, intervalMs, actorOf(principal));
      return { status: 200, body: { slowModeMs: intervalMs } };
    }),
    route('PUT', /^\/pin$/, 'pin_put', 'moderate', async ({ room, body, principal }) => {
      const seq = optionalInteger(body, 'seq', 1, Number.MAX_SAFE_INTEGER);
      if (seq === undefined) throw fail.bad_request("'seq' is required");
      const { message, pinned } = await service.pin(room, seq, actorOf(principal));
      return { status: 200, body: { pinned, seq: message.seq } };
    }),
    route('DELETE', /^\/pin$/, 'pin_delete', 'moderate', async ({ room, principal }) => {
      return { status: 200, body: { seq: (await service.unpin(room, actorOf(principal))).seq } };
    }),
    route('GET', /^\/moderation$/, 'moderation_get', 'moderate', async ({ room }) => ({ status: 200, body: await service.moderationLists(room) })),
  ];
}
