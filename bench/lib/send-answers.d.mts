/** Types for the tests (test/unit/bench-send-answers.test.ts); the harness itself is plain ESM. */
export interface AnswerReport {
  sends: number;
  acked: number;
  overloaded: number;
  errors: Record<string, number>;
  answeredLate: number;
  neverAnswered: number;
  histogram: string;
}
export interface LatencySummary { count: number; p50Ms: number | null; p99Ms: number | null; p999Ms: number | null; maxMs: number | null }
export interface StepAnswers {
  deadlineMs: number;
  sends: number;
  acked: number;
  overloaded: number;
  otherErrors: Record<string, number>;
  answeredLate: number;
  neverAnswered: number;
  unansweredWithinDeadline: number;
  answerTime: LatencySummary;
  ackedButMissing?: number;
}
export class SendAnswers {
  constructor(deadlineUs: number);
  sent(id: string, atUs: number): void;
  answered(id: string, code: string | null, atUs: number): boolean;
  report(): AnswerReport;
}
export class AckedSeqs {
  acked(seq: number, step: number): void;
  seen(seq: number): void;
  addMissing(counts: number[]): number[];
}
export function sumAnswers(reports: AnswerReport[], deadlineMs: number): StepAnswers;
export function overloadVerdict(step: { rateMsgPerS: number; answers: StepAnswers & { ackedButMissing: number } }): { rateMsgPerS: number; pass: boolean; line: string };
