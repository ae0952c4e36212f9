/** Types for the tests (test/unit/bench-report.test.ts); the harness itself is plain ESM. */
export const TARGETS: string[];
export function runOrder(targets: string[]): string[];
