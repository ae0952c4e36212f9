/** The room subscriptions, reference counted: subscribe on the first holder, unsubscribe on the last (MemoryBus). */
import { afterEach, describe, expect, it } from 'vitest';
import { RoomChannels } from '../../src/gateway/room-channels.js';
import { MemoryBus } from '../../src/shared/bus/memory-bus.js';
import { subjects } from '../../src/shared/protocol/bus-messages.js';

interface State { room: string; received: string[] }

function setUp() {
  const bus = new MemoryBus();
  const opened: string[] = [];
  const closed: string[] = [];
  const roomsActive: number[] = [];
  const channels = new RoomChannels<State>({
    bus, metrics: { roomsActive: (count) => roomsActive.push(count) },
    open: (hold) => { opened.push(hold.room); return { room: hold.room, received: [] }; },
    receive: (state, data) => state.received.push(new TextDecoder().decode(data)),
    close: (state) => {
      // Still subscribed while the room's last work runs.
      expect(bus.subscriptionCount(subjects.room(state.room))).toBe(1);
      closed.push(state.room);
    },
  });
  const publish = (room: string, text: string) => bus.publish(subjects.room(room), new TextEncoder().encode(text));
  return { bus, channels, opened, closed, roomsActive, publish };
}

describe('room channels', () => {
  let bus: MemoryBus | undefined;
  afterEach(async () => { await bus?.close(); });

  it('subscribes once on the first holder and unsubscribes on the last', async () => {
    const setup = setUp();
    bus = setup.bus;
    const { channels, opened, closed, roomsActive, publish } = setup;
    const first = channels.acquire('a');
    const second = channels.acquire('a');
    expect(second).toBe(first);
    expect(opened).toEqual(['a']);
    expect(bus.subscriptionCount(subjects.room('a'))).toBe(1);
    publish('a', 'hello');
    await bus.flush();
    expect(first.state.received).toEqual(['hello']);
    channels.release(first);
    expect(bus.subscriptionCount(subjects.room('a'))).toBe(1);
    expect(closed).toEqual([]);
    channels.release(second);
    expect(closed).toEqual(['a']);
    expect(first.closed).toBe(true);
    expect(bus.subscriptionCount(subjects.room('a'))).toBe(0);
    expect(channels.size).toBe(0);
    expect(roomsActive).toEqual([1, 0]);
  });

  it('keeps rooms apart', async () => {
    const setup = setUp();
    bus = setup.bus;
    const { channels, publish } = setup;
    const a = channels.acquire('a');
    const b = channels.acquire('b');
    publish('b', 'for b');
    await bus.flush();
    expect(a.state.received).toEqual([]);
    expect(b.state.received).toEqual(['for b']);
    expect([...channels.states()].map((s) => s.room)).toEqual(['a', 'b']);
  });

  it('a dropped room is closed for its holders, and their releases do not touch the room opened after it', () => {
    const setup = setUp();
    bus = setup.bus;
    const { channels, opened, closed } = setup;
    const old = channels.acquire('a');
    channels.acquire('a');
    channels.drop(old);
    expect(old.closed).toBe(true);
    const fresh = channels.acquire('a');
    expect(fresh).not.toBe(old);
    channels.release(old);
    channels.release(old);
    expect(fresh.closed).toBe(false);
    expect(bus.subscriptionCount(subjects.room('a'))).toBe(1);
    expect(opened).toEqual(['a', 'a']);
    expect(closed).toEqual(['a']);
  });

  it('delivers nothing to a room after it closed', async () => {
    const setup = setUp();
    bus = setup.bus;
    const { channels, publish } = setup;
    const hold = channels.acquire('a');
    publish('a', 'queued before the close');
    channels.release(hold);
    await bus.flush();
    expect(hold.state.received).toEqual([]);
  });
});
