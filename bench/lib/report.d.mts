/** Types for the tests (test/unit/bench-report.test.ts); the harness itself is plain ESM. */
export interface StepFigures {
  rateMsgPerS: number;
  serverCpuNsPerDelivery: number | null;
  deliveredPerS: number;
  framesPerS: number;
  withinBounds: boolean;
  loadCoreSaturated: boolean;
  serverSyscalls?: { writesPerS: number; readsPerS: number; pollsPerS: number; writesPerDelivery: number | null };
  serverKernelNsPerDelivery?: number | null;
}
export interface EfficiencyRow {
  rateMsgPerS: number;
  roomcastNsPerDelivery: number | null;
  limitNsPerDelivery: number | null;
  ratio: number | null;
  limitSendsNsPerDelivery?: number | null;
  ratioToLimitSends?: number | null;
  limitSendsWritesPerDelivery?: number | null;
  limitSendsKernelNsPerDelivery?: number | null;
  roomcastWritesPerDelivery: number | null;
  limitWritesPerDelivery: number | null;
  roomcastKernelNsPerDelivery: number | null;
  limitKernelNsPerDelivery: number | null;
  saturated: boolean;
}
export function efficiency(result: { targets: { target: string; steps: StepFigures[] }[] }): EfficiencyRow[] | null;
export interface Spread { median: number; min: number; max: number }
export function spread(values: Array<number | null | undefined>): Spread | null;
export interface EfficiencyOverRoundsRow {
  rateMsgPerS: number;
  ratios: Array<number | null>;
  ratio: Spread | null;
  ratiosToLimitSends?: Array<number | null>;
  ratioToLimitSends?: Spread | null;
  limitSendsOverLimit?: Spread | null;
  saturatedRounds: number;
}
export function efficiencyOverRounds(rounds: Array<{ efficiency: EfficiencyRow[] | null }>): EfficiencyOverRoundsRow[] | null;
export function writePathUs(cpuUsPerMessage: Record<string, number> | null | undefined): number | null;
export interface RoomcastRoundStep { rateMsgPerS: number; p99Ms: number | null; withinBounds: boolean; writePathUs: number | null }
export function roomcastStepsOfRound(result: { targets: Array<{ target: string; steps: Array<Record<string, unknown>> }> }): RoomcastRoundStep[];
