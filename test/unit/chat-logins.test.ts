/**
 * The gateway's batched logins over the in-process bus: one request for the connections opened
 * together, each push to its own connection, and a failed batch (or a failed login in it) asked
 * once more for the connections still open.
 */
import { describe, expect, it, vi } from 'vitest';
import { ChatClient } from '../../src/gateway/chat-client.js';
import type { Conn } from '../../src/gateway/uws-server.js';
import { MemoryBus } from '../../src/shared/bus/memory-bus.js';
import { serve } from '../../src/shared/bus/rpc.js';
import { decodeMsgpack } from '../../src/shared/codec/codec.js';
import { fail } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/log.js';
import { GatewayMetrics, MetricsRegistry } from '../../src/shared/metrics.js';
import { subjects } from '../../src/shared/protocol/bus-messages.js';
import type { ChatLoginsReply, ChatLoginsRequest } from '../../src/shared/protocol/chat-bus-messages.js';

function fakeConn(id: string): Conn & { sent: unknown[]; closed: boolean } {
  const sent: unknown[] = [];
  return {
    id, identity: { uid: `u-${id}`, role: 'viewer', device: 'web' }, format: 'msgpack', closed: false, lastHeardMs: 0, sent,
    send: (data) => { sent.push(decodeMsgpack(data as Uint8Array)); return 'sent'; },
    subscribe: () => undefined, unsubscribe: () => undefined, bufferedBytes: () => 0, end: () => undefined, ping: () => undefined,
    cork: (write) => write(), publishToOthers: () => false,
  };
}

describe('batched chat logins', () => {
  it('sends one request for a batch and each push to its own connection; failed ones are asked once more', async () => {
    const bus = new MemoryBus();
    const requests: string[][] = [];
    serve(bus, subjects.chat('logins'), 'room-service', async (request: ChatLoginsRequest): Promise<ChatLoginsReply> => {
      requests.push(request.logins.map((login) => login.caller.connId));
      if (requests.length === 1) throw fail.unavailable('the store blinked');
      // The second time, the login of `c` fails alone.
      return { frames: request.logins.map((login) => (login.caller.connId === 'c' && requests.length === 2 ? null : { t: 'inbox', msgs: [], cursor: 0, lastSeq: requests.length })) };
    }, () => undefined);
    const chat = new ChatClient({ gatewayId: 'gw', bus, log: silentLogger, metrics: new GatewayMetrics(new MetricsRegistry()), requestTimeoutMs: 1000, batching: { windowMs: 0, maxItems: 128 } });
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(fakeConn) as [ReturnType<typeof fakeConn>, ReturnType<typeof fakeConn>, ReturnType<typeof fakeConn>, ReturnType<typeof fakeConn>];
    const done = chat.logins([a, b, c, d].map((conn) => ({ conn, connectedAtMs: 1 })));
    await vi.waitFor(() => expect(requests).toHaveLength(1));
    d.closed = true;
    await done;
    // The retry left out the closed connection; the login that failed in it is not asked a third time.
    expect(requests).toEqual([['a', 'b', 'c', 'd'], ['a', 'b', 'c']]);
    expect(a.sent).toEqual([{ t: 'inbox', msgs: [], cursor: 0, lastSeq: 2 }]);
    expect(b.sent).toEqual([{ t: 'inbox', msgs: [], cursor: 0, lastSeq: 2 }]);
    expect(c.sent).toEqual([]);
    expect(d.sent).toEqual([]);
  });
});
