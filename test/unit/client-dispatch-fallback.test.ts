/**
 * The SDK's dispatch fallback: a gateway address that dispatch names may be unreachable from where
 * the client is; after `dispatchFailuresBeforeFallback` failed attempts in a row on dispatched
 * addresses, one attempt goes to `url`, and after that dispatch is asked again. A scripted
 * WebSocket plays the gateways, a stubbed fetch plays dispatch; fake timers drive the backoff.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RoomcastClient } from '../../src/client/roomcast-client.js';
import { FakeWebSocket } from '../helpers/fake-web-socket.js';

const URL_FALLBACK = 'wss://chat.example.com/ws';
const DISPATCHED = 'ws://10.1.2.3:8080/ws';
const RECONNECT_MS = 10;

/** The address (without the token) of every socket the client opened, in order. */
const addresses = () => FakeWebSocket.all.map((socket) => socket.url.split('?')[0]);

function client(extra: { dispatchFailuresBeforeFallback?: number } = {}): RoomcastClient {
  return new RoomcastClient({
    url: URL_FALLBACK, dispatchUrl: 'https://api.example.com/v1/gateway', token: 'tok', WebSocket: FakeWebSocket,
    reconnect: { baseMs: RECONNECT_MS, maxMs: RECONNECT_MS }, random: () => 0.5, ...extra,
  });
}

/** Lets the client's fetch resolve and its socket be created; then fails that attempt before the welcome. */
async function failAttempt(): Promise<void> {
  await vi.advanceTimersByTimeAsync(RECONNECT_MS);
  FakeWebSocket.last().drop(1006);
}

async function nextSocket(): Promise<FakeWebSocket> {
  const before = FakeWebSocket.all.length;
  await vi.advanceTimersByTimeAsync(RECONNECT_MS);
  expect(FakeWebSocket.all.length).toBe(before + 1);
  return FakeWebSocket.last();
}

beforeEach(() => {
  FakeWebSocket.all = [];
  vi.useFakeTimers();
  vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify({ url: DISPATCHED, gatewayId: 'gw-7' }), { status: 200 })));
});

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

describe('dispatch fallback', () => {
  it('connects to url after three failed attempts on dispatched addresses, then asks dispatch again', async () => {
    const sdk = client();
    const connected = sdk.connect();
    for (let i = 0; i < 3; i++) await failAttempt();
    expect(addresses()).toEqual([DISPATCHED, DISPATCHED, DISPATCHED]);

    const fallback = await nextSocket();
    expect(fallback.url.split('?')[0]).toBe(URL_FALLBACK);
    fallback.open();
    await connected;

    // A success: the next connection goes through dispatch again.
    fallback.drop(1012);
    const again = await nextSocket();
    expect(again.url.split('?')[0]).toBe(DISPATCHED);
    sdk.close();
  });

  it('counts failures in a row only: a dispatched connection that opens starts the count over', async () => {
    const sdk = client();
    const connected = sdk.connect();
    await failAttempt();
    await failAttempt();
    const third = await nextSocket();
    third.open();
    await connected;
    third.drop(1006);
    await failAttempt();
    await failAttempt();
    await failAttempt();
    expect(addresses()).toEqual(Array.from({ length: 6 }, () => DISPATCHED));
    expect((await nextSocket()).url.split('?')[0]).toBe(URL_FALLBACK);
    sdk.close();
  });

  it('tries dispatch again when the fallback fails too, and honours the option', async () => {
    const sdk = client({ dispatchFailuresBeforeFallback: 1 });
    void sdk.connect().catch(() => undefined);
    await failAttempt();
    await failAttempt();
    await failAttempt();
    await failAttempt();
    expect(addresses()).toEqual([DISPATCHED, URL_FALLBACK, DISPATCHED, URL_FALLBACK]);
    sdk.close();
  });

  it('refuses a count that is not a whole number of at least 1', () => {
    expect(() => client({ dispatchFailuresBeforeFallback: 0 })).toThrow(RangeError);
    expect(() => client({ dispatchFailuresBeforeFallback: 1.5 })).toThrow(RangeError);
  });
});
