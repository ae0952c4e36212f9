/**
 * The bench's limit peer replays Roomcast's recorded frames; the harness checks the replay is byte
 * for byte Roomcast's (bench/lib/frame-recording.mjs). Frames here come from Roomcast's own codec.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareRecordings, frameLayout, replayFrame, replayPlan } from '../../bench/lib/frame-recording.mjs';
import { decodeMsgpack, encodeMsgpack } from '../../src/shared/codec/codec.js';

const dir = mkdtempSync(join(tmpdir(), 'roomcast-frame-recording-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const STEP_START_US = 5_000_000_000;
/** The senders' text: the scheduled time in 15 digits, `|`, filler. */
const text = (scheduledUs: number): string => `${String(scheduledUs).padStart(15, '0')}|xxxxxxxx`;

function frame(room: string, firstSeq: number, count: number, tsMs: number): Uint8Array {
  const msgs = Array.from({ length: count }, (_, i) => ({
    seq: firstSeq + i, uid: 's1', kind: 'chat', prio: 0, text: text(STEP_START_US + 1000 * (firstSeq + i)), ts: tsMs + i, cid: `s1-${firstSeq + i}`,
  }));
  return encodeMsgpack({ t: 'messages', room, msgs });
}

/** A recording file as the native client writes it: u64 arrival µs, u32 length, payload. */
function recording(name: string, frames: Array<{ atUs: number; payload: Uint8Array }>): string {
  const parts = frames.flatMap(({ atUs, payload }) => {
    const header = Buffer.alloc(12);
    header.writeBigUInt64LE(BigInt(atUs));
    header.writeUInt32LE(payload.length, 8);
    return [header, Buffer.from(payload)];
  });
  const file = join(dir, name);
  writeFileSync(file, Buffer.concat(parts));
  return file;
}

const roomcastFrames = [
  { atUs: STEP_START_US + 50_000, payload: frame('hot', 1, 3, 1_764_000_000_000) },
  { atUs: STEP_START_US + 100_000, payload: frame('hot', 4, 1, 1_764_000_000_050) },
  { atUs: STEP_START_US + 120_000, payload: frame('r2', 7, 2, 1_764_000_000_070) },
];
const roomcastFile = recording('roomcast.bin', roomcastFrames);

/** What the limit peer publishes for step 0 when its step starts `shiftUs` after Roomcast's. */
function replayed(shiftUs: number): Array<{ atUs: number; payload: Buffer }> {
  const plan = replayPlan([roomcastFile], [STEP_START_US]);
  const step = plan.steps[0]!;
  return Array.from({ length: step.frames }, (_, n) => ({ atUs: STEP_START_US + shiftUs + n, payload: replayFrame(step, n, shiftUs) }));
}

describe('frame recordings (bench)', () => {
  it('finds the seqs, the stamps and ts in a frame of Roomcast\'s codec', () => {
    const layout = frameLayout(roomcastFrames[0]!.payload);
    expect(layout).toMatchObject({ room: 'hot', firstSeq: 1, lastSeq: 3, messages: 3 });
    expect(layout.stamps.map(([, length, value]) => [length, value])).toEqual([[15, STEP_START_US + 1000], [15, STEP_START_US + 2000], [15, STEP_START_US + 3000]]);
    expect(layout.ts).toHaveLength(3);
  });

  it('replays each frame at the same length with only its stamps and ts moved', () => {
    const plan = replayPlan([roomcastFile], [STEP_START_US]);
    expect(plan.firstSeqs).toEqual({ hot: 0, r2: 6 });
    const [first] = replayed(2_500_000);
    expect(first!.payload.length).toBe(roomcastFrames[0]!.payload.length);
    const before = decodeMsgpack(roomcastFrames[0]!.payload) as { msgs: Array<Record<string, unknown>> };
    const after = decodeMsgpack(first!.payload) as { msgs: Array<Record<string, unknown>> };
    expect(after.msgs.map((m) => [m.seq, m.uid, m.cid, m.ts, m.text])).toEqual(before.msgs.map((m) => [
      m.seq, m.uid, m.cid, (m.ts as number) + 2500, text(STEP_START_US + 2_500_000 + 1000 * (m.seq as number)),
    ]));
  });

  it('finds a replay identical to the recording', () => {
    const identity = compareRecordings([roomcastFile], [recording('limit.bin', replayed(7_000_000))]);
    expect(identity).toMatchObject({ identical: true, rooms: 2, frames: 3, messages: 6, difference: null });
  });

  it('reports a byte that differs outside the stamps and ts', () => {
    const frames = replayed(7_000_000);
    const uid = frames[1]!.payload.indexOf('s1');
    frames[1]!.payload[uid + 1] = '2'.charCodeAt(0);
    const identity = compareRecordings([roomcastFile], [recording('limit-byte.bin', frames)]);
    expect(identity.identical).toBe(false);
    expect(identity.difference).toBe(`room hot, frame 1 (seqs 4–4): byte ${uid + 1} is 0x31 from Roomcast, 0x32 from the limit peer`);
  });

  it('reports a missing frame and a frame of another length', () => {
    const frames = replayed(7_000_000);
    expect(compareRecordings([roomcastFile], [recording('limit-missing.bin', frames.slice(0, 2))]).difference)
      .toBe('room r2: Roomcast\'s recording has 1 frames, the limit peer\'s 0');
    const longer = frames.map((f, i) => (i === 2 ? { ...f, payload: Buffer.from(frame('r2', 7, 3, 1_764_000_000_070)) } : f));
    expect(compareRecordings([roomcastFile], [recording('limit-longer.bin', longer)]).identical).toBe(false);
  });
});
