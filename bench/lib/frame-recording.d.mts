/** Types for the tests (test/unit/bench-frame-recording.test.ts); the harness itself is plain ESM. */
export interface FrameLayout {
  room: string;
  firstSeq: number | null;
  lastSeq: number | null;
  messages: number;
  stamps: Array<[offset: number, length: number, value: number]>;
  ts: Array<[offset: number, header: number]>;
}
export interface ReplayStep { startUs: number; frames: number; messageTotal: number }
export interface FrameIdentity {
  identical: boolean;
  rooms: number;
  frames: number;
  bytes: number;
  messages: number;
  difference: string | null;
}
export function readRecording(files: string[]): Array<{ at: number; payload: Buffer }>;
export function frameLayout(payload: Uint8Array): FrameLayout;
export function replayPlan(files: string[], stepStartsUs: number[]): { firstSeqs: Record<string, number>; rooms: string[]; steps: ReplayStep[] };
export function replayFrame(plan: ReplayStep, n: number, shiftUs: number): Buffer;
export function compareRecordings(expectedFiles: string[], actualFiles: string[]): FrameIdentity;
