/**
 * How Roomcast answers room sends, as the bench measures it: each sender times every `send` to its
 * `ack` or `error` (SendAnswers) and looks for every acked seq in its own room's stream (AckedSeqs);
 * the harness sums the senders' reports (sumAnswers) and judges the overload step (overloadVerdict).
 */
import { createHistogram, merge, record, serialize, summarize } from './hdr-histogram.mjs';

/** One step's room sends of one sender process; times are µs on one monotonic clock. */
export class SendAnswers {
  /** @param {number} deadlineUs an answer later than this after its send counts as unanswered in time */
  constructor(deadlineUs) {
    this.deadlineUs = deadlineUs;
    /** Sends not answered yet: id → when the frame was written. */
    this.pending = new Map();
    this.sends = 0;
    this.acked = 0;
    this.overloaded = 0;
    /** Other error codes → count. */
    this.errors = {};
    this.answeredLate = 0;
    this.histogram = createHistogram();
  }

  sent(id, atUs) {
    this.sends++;
    this.pending.set(id, atUs);
  }

  /**
   * The answer to send `id`: `code` null for an `ack`, else the error's code. Ids this step did not
   * send (an earlier step's, reported there as never answered) are ignored; returns whether it counted.
   */
  answered(id, code, atUs) {
    const sentUs = this.pending.get(id);
    if (sentUs === undefined) return false;
    this.pending.delete(id);
    const tookUs = atUs - sentUs;
    record(this.histogram, tookUs);
    if (tookUs > this.deadlineUs) this.answeredLate++;
    if (code === null) this.acked++;
    else if (code === 'overloaded') this.overloaded++;
    else this.errors[code] = (this.errors[code] ?? 0) + 1;
    return true;
  }

  /** For the harness, which asks once the step's grace time (longer than the deadline) is over. */
  report() {
    return {
      sends: this.sends, acked: this.acked, overloaded: this.overloaded, errors: { ...this.errors },
      answeredLate: this.answeredLate, neverAnswered: this.pending.size, histogram: serialize(this.histogram),
    };
  }
}

/**
 * A sending connection's acked seqs against the messages of its own that it received in its room:
 * the ack and the message may arrive in either order; an acked seq never received was lost after
 * its ack. The connection feeds only its own messages (its uid) to `seen`.
 */
export class AckedSeqs {
  constructor() {
    /** Acked, not received (yet): seq → the step whose send it answered. */
    this.unseen = new Map();
    /** Received before its ack arrived. */
    this.seenUnacked = new Set();
  }

  acked(seq, step) {
    if (!this.seenUnacked.delete(seq)) this.unseen.set(seq, step);
  }

  seen(seq) {
    if (!this.unseen.delete(seq)) this.seenUnacked.add(seq);
  }

  /** Adds the acked seqs never received to `counts[step]`. */
  addMissing(counts) {
    for (const step of this.unseen.values()) counts[step] = (counts[step] ?? 0) + 1;
    return counts;
  }
}

/**
 * The senders' reports of one step, summed. A send is unanswered within the deadline when its
 * answer came later or never.
 */
export function sumAnswers(reports, deadlineMs) {
  const sum = (field) => reports.reduce((total, report) => total + report[field], 0);
  const otherErrors = {};
  for (const report of reports) for (const [code, n] of Object.entries(report.errors)) otherErrors[code] = (otherErrors[code] ?? 0) + n;
  const answeredLate = sum('answeredLate');
  const neverAnswered = sum('neverAnswered');
  return {
    deadlineMs,
    sends: sum('sends'),
    acked: sum('acked'),
    overloaded: sum('overloaded'),
    otherErrors,
    answeredLate,
    neverAnswered,
    unansweredWithinDeadline: answeredLate + neverAnswered,
    /** Send → its ack or error. */
    answerTime: summarize(merge(reports.map((report) => report.histogram))),
  };
}

/**
 * The overload step against the product's target: every send answered (ack or `overloaded`) within
 * the deadline, none lost after an ack. Another error code fails it too (it is neither answer), and
 * so does a step that made no send (nothing was shown).
 * @param {{ rateMsgPerS: number, answers: ReturnType<typeof sumAnswers> & { ackedButMissing: number } }} step
 */
export function overloadVerdict(step) {
  const a = step.answers;
  const otherErrors = Object.values(a.otherErrors).reduce((sum, n) => sum + n, 0);
  const pass = a.sends > 0 && a.unansweredWithinDeadline === 0 && a.ackedButMissing === 0 && otherErrors === 0;
  const seconds = a.deadlineMs / 1000;
  const line = `overload step at ${step.rateMsgPerS} msg/s: ${a.sends} sends, ${a.acked} acked, ${a.overloaded} overloaded,` +
    `${otherErrors ? ` ${otherErrors} other errors ${JSON.stringify(a.otherErrors)},` : ''}` +
    ` ${a.unansweredWithinDeadline} unanswered within ${seconds} s, ${a.ackedButMissing} acked but missing` +
    ` → ${pass ? 'PASS' : 'FAIL'} (every send answered within ${seconds} s, none lost after an ack)`;
  return { rateMsgPerS: step.rateMsgPerS, pass, line };
}
