/**
 * The Bus contract, run against the in-process bus and against NATS on a real nats-server, so the
 * all-in-one mode can never drift from the distributed one.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Bus, BusMessage, BusStatus } from '../../src/shared/bus/bus.js';
import { MemoryBus } from '../../src/shared/bus/memory-bus.js';
import { NatsBus } from '../../src/shared/bus/nats-bus.js';
import { RoomcastError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/log.js';
import { eventually, Latch } from '../helpers/latch.js';
import { startNats, type NatsServerHandle } from '../helpers/nats-server.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

const REQUEST_TIMEOUT_MS = 5_000;
/** Short enough for a test to wait it out, long enough to tell "at once" from "after the timeout". */
const SHORT_TIMEOUT_MS = 200;
const FAST_RECONNECT_MS = 50;

let nats: NatsServerHandle;
beforeAll(async () => {
  nats = await startNats();
});
afterAll(async () => {
  await nats?.stop();
});

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const encode = (text: string) => encoder.encode(text);
const decode = (data: Uint8Array) => decoder.decode(data);
const range = (count: number) => Array.from({ length: count }, (_, i) => String(i));

/** A handler that records what it receives and counts down a latch. */
function recorder(expected: number, label: string) {
  const latch = new Latch(expected, label);
  const messages: Array<{ subject: string; text: string }> = [];
  const handler = (message: BusMessage) => {
    messages.push({ subject: message.subject, text: decode(message.data) });
    latch.countDown();
  };
  return { latch, messages, handler, texts: () => messages.map((m) => m.text), subjects: () => messages.map((m) => m.subject) };
}

async function failureOf(promise: Promise<unknown>): Promise<RoomcastError> {
  const outcome = await promise.then(
    () => new Error('expected a rejection'),
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(RoomcastError);
  return outcome as RoomcastError;
}

function thrownBy(action: () => void): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

const implementations: Array<{ name: string; create: (onError: (error: unknown) => void) => Promise<Bus> }> = [
  { name: 'MemoryBus', create: async (onError) => new MemoryBus({ onError }) },
  { name: 'NatsBus', create: (onError) => NatsBus.connect({ servers: nats.url, name: 'bus-contract', log: silentLogger, onError }) },
];

let testNumber = 0;

describe.each(implementations)('Bus contract: $name', ({ create }) => {
  let bus: Bus;
  let handlerErrors: unknown[];
  /** Subjects of their own per test, so no test sees another's messages on the shared server. */
  let prefix: string;
  const subject = (name: string) => `${prefix}.${name}`;

  beforeEach(async () => {
    handlerErrors = [];
    prefix = `test${++testNumber}`;
    bus = await create((error) => handlerErrors.push(error));
  });
  afterEach(async () => {
    await bus.close();
  });

  it('delivers a message to the subscribers of its exact subject, never inside publish()', async () => {
    const target = recorder(1, 'target');
    const bystander = recorder(0, 'bystander');
    bus.subscribe(subject('news'), target.handler);
    bus.subscribe(subject('other'), bystander.handler);

    bus.publish(subject('news'), encode('hello'));
    expect(target.messages).toEqual([]);

    await target.latch.wait();
    await bus.flush();
    expect(target.messages).toEqual([{ subject: subject('news'), text: 'hello' }]);
    expect(bystander.messages).toEqual([]);
  });

  it('matches `*` as exactly one token and `>` as one or more trailing tokens', async () => {
    const oneToken = recorder(1, 'p.*');
    const middle = recorder(1, 'p.*.end');
    const rest = recorder(4, 'p.>');
    bus.subscribe(subject('*'), oneToken.handler);
    bus.subscribe(subject('*.end'), middle.handler);
    bus.subscribe(subject('>'), rest.handler);

    for (const name of ['a', 'a.b', 'a.end', 'a.b.end']) bus.publish(subject(name), encode(name));
    bus.publish(prefix, encode('the prefix alone'));
    bus.publish(`other.${subject('a')}`, encode('another prefix'));

    await Promise.all([oneToken.latch.wait(), middle.latch.wait(), rest.latch.wait()]);
    await bus.flush();
    expect(oneToken.subjects()).toEqual([subject('a')]);
    expect(middle.subjects()).toEqual([subject('a.end')]);
    expect(rest.subjects()).toEqual(['a', 'a.b', 'a.end', 'a.b.end'].map(subject));
  });

  it('keeps the order of 1,000 messages for each subscription', async () => {
    const count = 1_000;
    const exact = recorder(count, 'exact');
    const wildcard = recorder(count, 'wildcard');
    bus.subscribe(subject('ordered'), exact.handler);
    bus.subscribe(subject('>'), wildcard.handler);

    for (const text of range(count)) bus.publish(subject('ordered'), encode(text));

    await Promise.all([exact.latch.wait(), wildcard.latch.wait()]);
    expect(exact.texts()).toEqual(range(count));
    expect(wildcard.texts()).toEqual(range(count));
  });

  it('stops delivery on unsubscribe, including messages published but not yet delivered', async () => {
    const leaving = recorder(1, 'leaving');
    const staying = recorder(3, 'staying');
    const subscription = bus.subscribe(subject('u'), leaving.handler);
    bus.subscribe(subject('u'), staying.handler);
    expect(subscription.subject).toBe(subject('u'));

    bus.publish(subject('u'), encode('1'));
    await leaving.latch.wait();
    bus.publish(subject('u'), encode('2'));
    subscription.unsubscribe();
    bus.publish(subject('u'), encode('3'));
    subscription.unsubscribe();

    await staying.latch.wait();
    await bus.flush();
    expect(leaving.texts()).toEqual(['1']);
    expect(staying.texts()).toEqual(['1', '2', '3']);
  });

  it('gives each message to one member of each queue group and to every plain subscriber', async () => {
    const count = 300;
    const workerLatch = new Latch(count, 'workers');
    const workers: string[][] = [[], []];
    for (const received of workers) {
      bus.subscribe(subject('jobs'), (message) => {
        received.push(decode(message.data));
        workerLatch.countDown();
      }, { queue: 'workers' });
    }
    const auditor = recorder(count, 'auditor (a queue group of one)');
    bus.subscribe(subject('jobs'), auditor.handler, { queue: 'auditors' });
    const plain = recorder(count, 'plain');
    bus.subscribe(subject('jobs'), plain.handler);

    for (const text of range(count)) bus.publish(subject('jobs'), encode(text));

    await Promise.all([workerLatch.wait(), auditor.latch.wait(), plain.latch.wait()]);
    await bus.flush();
    const [first, second] = workers as [string[], string[]];
    expect(first.length).toBeGreaterThan(0);
    expect(second.length).toBeGreaterThan(0);
    expect([...first, ...second].sort((a, b) => Number(a) - Number(b))).toEqual(range(count));
    expect(auditor.texts()).toEqual(range(count));
    expect(plain.texts()).toEqual(range(count));
  });

  it('answers a request with the reply of a subscriber', async () => {
    bus.subscribe(subject('echo'), (message) => message.respond(encode(`echo: ${decode(message.data)}`)));

    const reply = await bus.request(subject('echo'), encode('hi'), { timeoutMs: REQUEST_TIMEOUT_MS });

    expect(decode(reply)).toBe('echo: hi');
  });

  it('resolves a request with the first reply and ignores later ones', async () => {
    const lateRequests: BusMessage[] = [];
    const lateSeen = new Latch(2, 'requests seen by the late responder');
    bus.subscribe(subject('poll'), (message) => message.respond(encode(`prompt: ${decode(message.data)}`)));
    bus.subscribe(subject('poll'), (message) => {
      lateRequests.push(message);
      lateSeen.countDown();
    });

    const first = await bus.request(subject('poll'), encode('1'), { timeoutMs: REQUEST_TIMEOUT_MS });
    await eventually(() => lateRequests.length === 1, { what: 'the late responder got the first request' });
    lateRequests[0]!.respond(encode('late'));
    await bus.flush();
    const second = await bus.request(subject('poll'), encode('2'), { timeoutMs: REQUEST_TIMEOUT_MS });

    await lateSeen.wait();
    expect(decode(first)).toBe('prompt: 1');
    expect(decode(second)).toBe('prompt: 2');
    expect(handlerErrors).toEqual([]);
  });

  it('treats respond() on a published message as a no-op', async () => {
    const responded = new Latch(1, 'responded');
    bus.subscribe(subject('plain'), (message) => {
      message.respond(encode('nobody asked'));
      responded.countDown();
    });

    bus.publish(subject('plain'), encode('news'));

    await responded.wait();
    await bus.flush();
    expect(handlerErrors).toEqual([]);
  });

  it("rejects a request nobody subscribes to with 'unavailable' at once", async () => {
    const started = Date.now();

    const error = await failureOf(bus.request(subject('nobody'), encode('?'), { timeoutMs: REQUEST_TIMEOUT_MS }));

    expect(error.code).toBe('unavailable');
    expect(Date.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS / 2);
  });

  it("rejects a request nobody answers in time with 'timeout'", async () => {
    const received = recorder(1, 'silent responder');
    bus.subscribe(subject('silent'), received.handler);
    const started = Date.now();

    const error = await failureOf(bus.request(subject('silent'), encode('?'), { timeoutMs: SHORT_TIMEOUT_MS }));

    expect(error.code).toBe('timeout');
    // Timers may fire a millisecond early by the wall clock.
    expect(Date.now() - started).toBeGreaterThanOrEqual(SHORT_TIMEOUT_MS - 5);
    expect(received.texts()).toEqual(['?']);
  });

  it('goes on delivering after a handler throws, and reports what it threw', async () => {
    const boom = new Error('boom');
    const seen = recorder(3, 'throwing handler');
    const neighbour = recorder(3, 'neighbour');
    bus.subscribe(subject('fragile'), (message) => {
      seen.handler(message);
      if (decode(message.data) === '1') throw boom;
    });
    bus.subscribe(subject('fragile'), neighbour.handler);

    for (const text of ['1', '2', '3']) bus.publish(subject('fragile'), encode(text));

    await Promise.all([seen.latch.wait(), neighbour.latch.wait()]);
    expect(seen.texts()).toEqual(['1', '2', '3']);
    expect(neighbour.texts()).toEqual(['1', '2', '3']);
    expect(handlerErrors).toEqual([boom]);
  });

  it('has delivered everything published before flush() to its own subscribers when flush() resolves', async () => {
    const count = 100;
    const received = recorder(count, 'flushed');
    bus.subscribe(subject('flushed'), received.handler);
    await bus.flush();

    for (const text of range(count)) bus.publish(subject('flushed'), encode(text));
    await bus.flush();

    expect(received.texts()).toEqual(range(count));
  });

  it('answers 500 concurrent requests each with its own reply', async () => {
    bus.subscribe(subject('double'), (message) => message.respond(encode(String(Number(decode(message.data)) * 2))));
    await bus.flush();

    const replies = await Promise.all(range(500).map((text) => bus.request(subject('double'), encode(text), { timeoutMs: REQUEST_TIMEOUT_MS })));

    expect(replies.map(decode)).toEqual(range(500).map((text) => String(Number(text) * 2)));
  });

  it('delivers what a responder published before it answered ahead of the answer', async () => {
    const routed: string[] = [];
    bus.subscribe(subject('routed'), (message) => routed.push(decode(message.data)));
    bus.subscribe(subject('store'), (message) => {
      bus.publish(subject('routed'), encode(`push of ${decode(message.data)}`));
      message.respond(encode('stored'));
    });
    await bus.flush();

    for (const text of ['a', 'b', 'c']) {
      await bus.request(subject('store'), encode(text), { timeoutMs: REQUEST_TIMEOUT_MS });
      expect(routed).toContain(`push of ${text}`);
    }
  });

  it("fails a request still waiting for its reply with 'unavailable' when the bus closes", async () => {
    const received = recorder(1, 'request that is never answered');
    bus.subscribe(subject('pending'), received.handler);
    await bus.flush();
    const pending = failureOf(bus.request(subject('pending'), encode('?'), { timeoutMs: REQUEST_TIMEOUT_MS }));
    await received.latch.wait();
    const started = Date.now();

    await bus.close();

    expect((await pending).code).toBe('unavailable');
    expect(Date.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS / 2);
  });

  it("delivers what was published before close(), then fails with 'unavailable'", async () => {
    const received = recorder(1, 'before close');
    bus.subscribe(subject('last'), received.handler);
    bus.publish(subject('last'), encode('last words'));

    await bus.close();

    expect(received.texts()).toEqual(['last words']);
    expect(thrownBy(() => bus.publish(subject('last'), encode('too late')))).toMatchObject({ code: 'unavailable' });
    expect((await failureOf(bus.request(subject('last'), encode('?'), { timeoutMs: REQUEST_TIMEOUT_MS }))).code).toBe('unavailable');
  });
});

describe('NatsBus on a real nats-server', () => {
  it('answers the requests a draining bus still delivers to its subscribers', async () => {
    const errors: unknown[] = [];
    const responder = await NatsBus.connect({ servers: nats.url, name: 'draining-responder', log: silentLogger, onError: (error) => errors.push(error) });
    const requester = await NatsBus.connect({ servers: nats.url, name: 'requester', log: silentLogger });
    try {
      let received = 0;
      let closing: Promise<void> | null = null;
      responder.subscribe('drain.echo', (message) => {
        received++;
        // The drain starts inside the first delivery: the requests behind it in the same read, and
        // any still on their way, are delivered while the bus drains.
        closing ??= responder.close();
        message.respond(message.data);
      });
      await responder.flush();

      const outcomes = range(200).map((text) => requester.request('drain.echo', encode(text), { timeoutMs: SHORT_TIMEOUT_MS * 10 }).then(
        (reply): { answered: boolean; code?: string } => ({ answered: decode(reply) === text }),
        (error: unknown) => ({ answered: false, code: (error as RoomcastError).code }),
      ));
      const settled = await Promise.all(outcomes);
      await closing;

      expect(errors).toEqual([]);
      // Every request the responder got, during the drain too, was answered; the others failed cleanly.
      expect(settled.filter((outcome) => outcome.answered)).toHaveLength(received);
      for (const outcome of settled.filter((o) => !o.answered)) expect(['unavailable', 'timeout']).toContain(outcome.code);
    } finally {
      await responder.close();
      await requester.close();
    }
  });

  it("reports 'disconnected' when its connection is cut, 'reconnected' when it is back, and receives again", async () => {
    const proxy = await startTcpProxy(nats.port);
    const behindProxy = await NatsBus.connect({
      servers: `nats://127.0.0.1:${proxy.port}`, ...nats.observer, name: 'behind-proxy', log: silentLogger, reconnectTimeWaitMs: FAST_RECONNECT_MS,
    });
    const publisher = await NatsBus.connect({ servers: nats.url, name: 'publisher', log: silentLogger });
    try {
      const statuses: BusStatus[] = [];
      const disconnected = new Latch(1, 'disconnected');
      const reconnected = new Latch(1, 'reconnected');
      behindProxy.onStatus((status) => {
        statuses.push(status);
        (status === 'disconnected' ? disconnected : reconnected).countDown();
      });
      const received: string[] = [];
      const arrivals = [new Latch(1, 'message before the cut'), new Latch(1, 'message after the cut')];
      behindProxy.subscribe('link.room', (message) => {
        received.push(decode(message.data));
        arrivals[received.length - 1]?.countDown();
      });
      await behindProxy.flush();
      publisher.publish('link.room', encode('before'));
      await arrivals[0]!.wait();

      proxy.cut();
      await disconnected.wait();
      expect(statuses).toEqual(['disconnected']);

      proxy.restore();
      await reconnected.wait();
      expect(statuses).toEqual(['disconnected', 'reconnected']);

      // The client subscribes again on reconnect; a round trip makes sure the server has it.
      await behindProxy.flush();
      publisher.publish('link.room', encode('after'));
      await arrivals[1]!.wait();
      expect(received).toEqual(['before', 'after']);
    } finally {
      await behindProxy.close();
      await publisher.close();
      await proxy.close();
    }
  });

  it('registers a subscription at the server and removes it on unsubscribe (seen by the monitoring endpoint)', async () => {
    const bus = await NatsBus.connect({ servers: nats.url, name: 'counted', log: silentLogger });
    try {
      const subscription = bus.subscribe('counted.room', () => {});
      await bus.flush();
      expect(await nats.subscriptionCount('counted.room')).toBe(1);

      subscription.unsubscribe();
      await bus.flush();
      expect(await nats.subscriptionCount('counted.room')).toBe(0);
    } finally {
      await bus.close();
    }
  });
});
