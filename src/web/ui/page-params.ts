/**
 * What a page learns from its URL and its host: the room (`?room=`, default `lobby`), the chat delay
 * (`?delay=` in ms), and the token: from the fragment (`#token=`, which browsers never send to a
 * server), from the page that embeds this one (postMessage), or from the all-in-one's dev sign-in.
 */
import { isRoomId, type RoomId } from '../../shared/protocol/frames.js';

export const DEFAULT_ROOM = 'lobby';
/** The longest chat delay the page accepts (a player is rarely a minute behind). */
export const MAX_DELAY_MS = 120_000;

export interface PageParams {
  room: RoomId;
  /** Bad values fall back to `lobby`; this says why, for the page to show. */
  roomProblem: string | null;
  delayMs: number;
  token: string | null;
}

export function readPageParams(location: Location = window.location): PageParams {
  const query = new URLSearchParams(location.search);
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ''));
  const asked = query.get('room') ?? fragment.get('room');
  const room = asked !== null && isRoomId(asked) ? asked : DEFAULT_ROOM;
  return {
    room,
    roomProblem: asked !== null && !isRoomId(asked) ? `'${asked}' is not a room id; showing '${DEFAULT_ROOM}'` : null,
    delayMs: parseDelayMs(query.get('delay') ?? fragment.get('delay')),
    token: fragment.get('token') || null,
  };
}

/** A delay in ms from a URL or an input: a whole number from 0 to MAX_DELAY_MS, else 0. */
export function parseDelayMs(raw: string | null | undefined): number {
  if (raw === null || raw === undefined || raw.trim() === '') return 0;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) return 0;
  return Math.min(MAX_DELAY_MS, Math.round(value));
}

/** The gateway's WebSocket endpoint: the page is served by the gateway, so it is this origin's `/ws`. */
export function gatewayUrl(location: Location = window.location): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

/** Remembers a token in the fragment, so a reload keeps it (nothing of it reaches a server). */
export function keepTokenInFragment(token: string): void {
  const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ''));
  fragment.set('token', token);
  history.replaceState(null, '', `${window.location.pathname}${window.location.search}#${fragment.toString()}`);
}

// ---- embedding -----------------------------------------------------------------------------------

/** Messages between an embedding page and this one (window.postMessage). */
export type HostMessage =
  | { type: 'roomcast:token'; token: string }
  | { type: 'roomcast:delay'; delayMs: number };

export const EMBED_READY = 'roomcast:ready';

/**
 * Listens to the page that embeds this one in an iframe: `{type: 'roomcast:token', token}` gives (or
 * renews) the token, `{type: 'roomcast:delay', delayMs}` sets the chat delay to the player's latency.
 * Tells the host it is ready with `{type: 'roomcast:ready', room}`. Returns false when not embedded.
 */
export function listenToHost(room: RoomId, handlers: { token(token: string): void; delay(delayMs: number): void }): boolean {
  if (window.parent === window) return false;
  window.addEventListener('message', (event: MessageEvent<unknown>) => {
    if (event.source !== window.parent) return;
    const data = event.data as Partial<HostMessage> | null;
    if (!data || typeof data !== 'object') return;
    if (data.type === 'roomcast:token' && typeof data.token === 'string' && data.token) handlers.token(data.token);
    if (data.type === 'roomcast:delay' && typeof data.delayMs === 'number') handlers.delay(parseDelayMs(String(data.delayMs)));
  });
  window.parent.postMessage({ type: EMBED_READY, room }, '*');
  return true;
}

// ---- the all-in-one's dev sign-in ----------------------------------------------------------------

/** Whether this gateway offers the dev sign-in (only all-in-one does). */
export async function devSignInAvailable(): Promise<boolean> {
  try {
    const response = await fetch('/dev/sign-in', { cache: 'no-store' });
    return response.ok && ((await response.json()) as { enabled?: unknown }).enabled === true;
  } catch {
    return false;
  }
}

/** A viewer token for `uid` from the dev sign-in; throws with the server's words when it refuses. */
export async function devSignIn(uid: string): Promise<string> {
  const response = await fetch(`/dev/token?uid=${encodeURIComponent(uid)}`, { cache: 'no-store' });
  const body = (await response.json().catch(() => null)) as { token?: string; error?: { message?: string } } | null;
  if (response.ok && body?.token) return body.token;
  throw new Error(body?.error?.message ?? `the dev sign-in answered ${response.status}`);
}

