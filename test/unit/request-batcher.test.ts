/**
 * The gateway's request coalescing (room sends, chat frames): what goes out in one request, when,
 * and how each item learns its own answer. Fake timers and a recording call stand in for the bus; the
 * room service's side is covered end to end in test/integration/send-batching.test.ts and
 * test/integration/chat-batching.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { errorReply } from '../../src/shared/bus/rpc.js';
import { fail, RoomcastError } from '../../src/shared/errors.js';
import type { Reply, SendReply, SendRequest } from '../../src/shared/protocol/bus-messages.js';
import { RequestBatcher } from '../../src/gateway/request-batcher.js';

const caller = { uid: 'u1', role: 'viewer' as const };
const sendOf = (cid: string): SendRequest => ({ caller, room: 'r1', cid, text: `text ${cid}`, kind: 'chat' });

/** Answers every batch with seq = 100 + position in the order the batches came, unless told otherwise. */
class RecordingCall {
  readonly batches: SendRequest[][] = [];
  private nextSeq = 100;
  answer: (sends: SendRequest[]) => Promise<Array<Reply<SendReply>>> = async (sends) =>
    sends.map(() => ({ ok: { seq: this.nextSeq++, duplicate: false } }));

  readonly call = (sends: SendRequest[]): Promise<Array<Reply<SendReply>>> => {
    this.batches.push(sends);
    return this.answer(sends);
  };

  cids(): string[][] {
    return this.batches.map((batch) => batch.map((send) => send.cid));
  }
}

let now = 0;
let recording: RecordingCall;
let batcher: RequestBatcher<SendRequest, SendReply>;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate'] });
  now = 1_000;
  recording = new RecordingCall();
  batcher = new RequestBatcher(recording.call, { windowMs: 4, maxItems: 3 }, () => now);
});

afterEach(() => {
  vi.useRealTimers();
});

/** Moves the fake clock and the fake timers together. */
async function advance(ms: number): Promise<void> {
  now += ms;
  await vi.advanceTimersByTimeAsync(ms);
}

describe('RequestBatcher', () => {
  it('sends a first message at the end of the current turn, with whatever else came in that turn', async () => {
    const first = batcher.submit(sendOf('a'));
    const second = batcher.submit(sendOf('b'));
    expect(recording.batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(recording.cids()).toEqual([['a', 'b']]);
    await expect(first).resolves.toEqual({ seq: 100, duplicate: false });
    await expect(second).resolves.toEqual({ seq: 101, duplicate: false });
  });

  it('coalesces what comes within the window after a request into the next one, sent when the window ends', async () => {
    const first = batcher.submit(sendOf('a'));
    await vi.advanceTimersByTimeAsync(0);
    await advance(1);
    const later = [batcher.submit(sendOf('b')), batcher.submit(sendOf('c'))];
    await advance(2);
    expect(recording.cids()).toEqual([['a']]);
    await advance(1);
    expect(recording.cids()).toEqual([['a'], ['b', 'c']]);
    await expect(Promise.all([first, ...later])).resolves.toEqual([
      { seq: 100, duplicate: false }, { seq: 101, duplicate: false }, { seq: 102, duplicate: false },
    ]);
  });

  it('sends a full batch at once, without waiting for the window', async () => {
    batcher.submit(sendOf('a'));
    await vi.advanceTimersByTimeAsync(0);
    const full = ['b', 'c', 'd'].map((cid) => batcher.submit(sendOf(cid)));
    expect(recording.cids()).toEqual([['a'], ['b', 'c', 'd']]);
    await expect(Promise.all(full)).resolves.toHaveLength(3);
  });

  it('gives each send its own answer: one refused send fails alone, with its code and retry hint', async () => {
    recording.answer = async () => [
      { ok: { seq: 7, duplicate: false } },
      errorReply(fail.muted('r1')),
      errorReply(fail.slow_mode('r1', 1500)),
    ];
    const settled = await Promise.allSettled(['a', 'b', 'c'].map((cid) => batcher.submit(sendOf(cid))));
    expect(settled[0]).toEqual({ status: 'fulfilled', value: { seq: 7, duplicate: false } });
    const muted = (settled[1] as PromiseRejectedResult).reason as RoomcastError;
    expect(muted).toBeInstanceOf(RoomcastError);
    expect(muted.code).toBe('muted');
    const slow = (settled[2] as PromiseRejectedResult).reason as RoomcastError;
    expect([slow.code, slow.retryAfterMs]).toEqual(['slow_mode', 1500]);
  });

  it('fails every send of a request that fails as a whole, with that failure', async () => {
    recording.answer = async () => { throw fail.overloaded(800); };
    const outcome = Promise.allSettled([batcher.submit(sendOf('a')), batcher.submit(sendOf('b'))]);
    await vi.advanceTimersByTimeAsync(0);
    const settled = await outcome;
    expect(settled.map((result) => ((result as PromiseRejectedResult).reason as RoomcastError).code)).toEqual(['overloaded', 'overloaded']);
  });

  it('fails a send the reply leaves out instead of leaving it waiting', async () => {
    recording.answer = async () => [{ ok: { seq: 1, duplicate: false } }];
    const outcome = Promise.allSettled([batcher.submit(sendOf('a')), batcher.submit(sendOf('b'))]);
    await vi.advanceTimersByTimeAsync(0);
    const [answered, missing] = await outcome;
    expect(answered.status).toBe('fulfilled');
    expect(((missing as PromiseRejectedResult).reason as RoomcastError).code).toBe('internal');
  });

  it('with a zero window sends once per event-loop turn', async () => {
    batcher = new RequestBatcher(recording.call, { windowMs: 0, maxItems: 100 }, () => now);
    batcher.submit(sendOf('a'));
    batcher.submit(sendOf('b'));
    await vi.advanceTimersByTimeAsync(0);
    batcher.submit(sendOf('c'));
    await vi.advanceTimersByTimeAsync(0);
    expect(recording.cids()).toEqual([['a', 'b'], ['c']]);
  });
});
