/** Types for the tests (test/unit/bench-report.test.ts); the harness itself is plain ESM. */
export interface SyscallCounts { writes: number; reads: number; polls: number }
export function parsePerfStat(output: string): SyscallCounts | null;
export function countSyscalls(pids: number[]): { stop(): Promise<SyscallCounts | null> };
