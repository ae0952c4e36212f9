/**
 * The bench's account of how Roomcast answers room sends (bench/lib/send-answers.mjs): each send
 * timed to its ack or error, acked seqs looked for in the sender's stream, the overload verdict.
 */
import { describe, expect, it } from 'vitest';
import { AckedSeqs, SendAnswers, overloadVerdict, sumAnswers } from '../../bench/lib/send-answers.mjs';

const DEADLINE_MS = 1000;
const T0_US = 7_000_000;

describe('SendAnswers', () => {
  it('sorts answers into acked, overloaded and other codes, and times each from its send', () => {
    const answers = new SendAnswers(DEADLINE_MS * 1000);
    answers.sent('a', T0_US);
    answers.sent('b', T0_US);
    answers.sent('c', T0_US);
    expect(answers.answered('a', null, T0_US + 2_000)).toBe(true);
    expect(answers.answered('b', 'overloaded', T0_US + 4_000)).toBe(true);
    expect(answers.answered('c', 'rate_limited', T0_US + 30_000)).toBe(true);
    const report = answers.report();
    expect(report).toMatchObject({ sends: 3, acked: 1, overloaded: 1, errors: { rate_limited: 1 }, answeredLate: 0, neverAnswered: 0 });
    const step = sumAnswers([report], DEADLINE_MS);
    // The histogram keeps 3 significant digits.
    expect(step.answerTime.count).toBe(3);
    expect(step.answerTime.p50Ms).toBeCloseTo(4, 1);
    expect(step.answerTime.maxMs).toBeCloseTo(30, 1);
  });

  it('counts an answer after the deadline, and a send never answered, as unanswered within it', () => {
    const answers = new SendAnswers(DEADLINE_MS * 1000);
    answers.sent('late', T0_US);
    answers.sent('never', T0_US);
    answers.sent('in-time', T0_US);
    answers.answered('late', null, T0_US + 1_000_001);
    answers.answered('in-time', null, T0_US + 1_000_000);
    const step = sumAnswers([answers.report()], DEADLINE_MS);
    expect(step).toMatchObject({ sends: 3, acked: 2, answeredLate: 1, neverAnswered: 1, unansweredWithinDeadline: 2 });
  });

  it('ignores answers to ids it did not send, and a second answer to the same send', () => {
    const answers = new SendAnswers(DEADLINE_MS * 1000);
    answers.sent('a', T0_US);
    expect(answers.answered('earlier-step', null, T0_US)).toBe(false);
    expect(answers.answered('a', null, T0_US + 1)).toBe(true);
    expect(answers.answered('a', 'overloaded', T0_US + 2)).toBe(false);
    expect(answers.report()).toMatchObject({ sends: 1, acked: 1, overloaded: 0 });
  });

  it('sums several senders, their other error codes by code', () => {
    const one = new SendAnswers(DEADLINE_MS * 1000);
    const two = new SendAnswers(DEADLINE_MS * 1000);
    one.sent('a', T0_US);
    two.sent('b', T0_US);
    two.sent('c', T0_US);
    one.answered('a', 'muted', T0_US + 10);
    two.answered('b', 'muted', T0_US + 10);
    two.answered('c', 'overloaded', T0_US + 10);
    expect(sumAnswers([one.report(), two.report()], DEADLINE_MS)).toMatchObject({ sends: 3, acked: 0, overloaded: 1, otherErrors: { muted: 2 } });
  });
});

describe('AckedSeqs', () => {
  it('finds an acked seq whether its message arrives before or after the ack', () => {
    const seqs = new AckedSeqs();
    seqs.acked(5, 0);
    seqs.seen(5);
    seqs.seen(6);
    seqs.acked(6, 0);
    expect(seqs.addMissing([])).toEqual([]);
  });

  it('counts each acked seq never received under the step of its ack', () => {
    const seqs = new AckedSeqs();
    seqs.acked(1, 0);
    seqs.seen(1);
    seqs.acked(2, 0);
    seqs.acked(9, 2);
    seqs.acked(10, 2);
    expect(seqs.addMissing([])).toEqual([1, undefined, 2]);
  });
});

describe('overloadVerdict', () => {
  const step = (changes: Partial<ReturnType<typeof sumAnswers>> & { ackedButMissing?: number } = {}) => {
    const answers = new SendAnswers(DEADLINE_MS * 1000);
    for (let i = 0; i < 10; i++) answers.sent(`s${i}`, T0_US);
    for (let i = 0; i < 10; i++) answers.answered(`s${i}`, i < 7 ? null : 'overloaded', T0_US + 5_000);
    return { rateMsgPerS: 800, answers: { ...sumAnswers([answers.report()], DEADLINE_MS), ackedButMissing: 0, ...changes } };
  };

  it('passes when every send got an ack or overloaded in time and every acked seq arrived', () => {
    const verdict = overloadVerdict(step());
    expect(verdict.pass).toBe(true);
    expect(verdict.line).toBe('overload step at 800 msg/s: 10 sends, 7 acked, 3 overloaded, 0 unanswered within 1 s, 0 acked but missing' +
      ' → PASS (every send answered within 1 s, none lost after an ack)');
  });

  it('fails on a send unanswered within the deadline', () => {
    expect(overloadVerdict(step({ unansweredWithinDeadline: 1 })).line).toMatch(/1 unanswered within 1 s, .* → FAIL/);
  });

  it('fails on an acked seq that never arrived', () => {
    expect(overloadVerdict(step({ ackedButMissing: 1 })).pass).toBe(false);
  });

  it('fails on an answer that is neither an ack nor overloaded, and names it', () => {
    const verdict = overloadVerdict(step({ otherErrors: { rate_limited: 2 } }));
    expect(verdict.pass).toBe(false);
    expect(verdict.line).toContain('2 other errors {"rate_limited":2},');
  });

  it('fails a step that made no send', () => {
    expect(overloadVerdict(step({ sends: 0, acked: 0, overloaded: 0 })).pass).toBe(false);
  });
});
