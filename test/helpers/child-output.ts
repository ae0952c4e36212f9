/**
 * A child process's output (stdout and stderr) as lines, so a test waits for the line that announces
 * an event (a server listening, a gateway drained) instead of polling or sleeping. Every line is kept
 * (test processes say little), so a wait also finds a line that came before it was asked for.
 */
import type { ChildProcess } from 'node:child_process';

const TAIL_CHARS = 4000;

/** What a line means to a waiter: a value once it is the line waited for, undefined otherwise. */
export type LineMatch<T> = (line: string) => T | undefined;

export class ChildOutput {
  private readonly lines: string[] = [];
  private readonly partial = { stdout: '', stderr: '' };
  private readonly waiters = new Set<{ offer(line: string): void; end(reason: Error): void }>();
  /** Set once no more output can come: the child closed its output, or could not be started. */
  private ended: Error | null = null;

  constructor(child: ChildProcess, private readonly name: string) {
    for (const stream of ['stdout', 'stderr'] as const) {
      child[stream]!.setEncoding('utf8').on('data', (chunk: string) => this.take(stream, chunk));
    }
    // 'close' comes after the last output, so a line printed just before an exit is never missed.
    child.once('close', (code, signal) => this.end(new Error(`${name} exited (${code ?? signal})`)));
    child.once('error', (error) => this.end(error));
  }

  /** Everything so far, for assertions on what a process logged. */
  text(): string {
    return this.lines.join('\n');
  }

  /** The last few thousand characters, for error messages. */
  tail(): string {
    return this.text().slice(-TAIL_CHARS);
  }

  /**
   * Resolves with `match`'s value for the first line (seen already or to come) it accepts; rejects
   * when the child ends first, or after `timeoutMs`, with the output's tail.
   */
  waitForLine<T>(match: LineMatch<T>, what: string, timeoutMs: number): Promise<T> {
    for (const line of this.lines) {
      const value = match(line);
      if (value !== undefined) return Promise.resolve(value);
    }
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        offer: (line: string) => {
          const value = match(line);
          if (value !== undefined) settle(() => resolve(value));
        },
        end: (reason: Error) => settle(() => reject(new Error(`${reason.message} before ${what}:\n${this.tail()}`, { cause: reason }))),
      };
      const timer = setTimeout(() => settle(() => reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms:\n${this.tail()}`))), timeoutMs);
      const settle = (finish: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        finish();
      };
      if (this.ended) waiter.end(this.ended);
      else this.waiters.add(waiter);
    });
  }

  private take(stream: 'stdout' | 'stderr', chunk: string): void {
    const pieces = (this.partial[stream] + chunk).split('\n');
    this.partial[stream] = pieces.pop()!;
    for (const line of pieces) this.add(line);
  }

  private add(line: string): void {
    this.lines.push(line);
    for (const waiter of [...this.waiters]) waiter.offer(line);
  }

  private end(reason: Error): void {
    if (this.ended) return;
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream]) this.add(this.partial[stream]);
      this.partial[stream] = '';
    }
    this.ended = reason;
    for (const waiter of [...this.waiters]) waiter.end(reason);
  }
}

/** Matches a structured JSON log line (src/shared/log.ts) whose `msg` is `msg`; other lines are not. */
export function logRecord(msg: string): LineMatch<Record<string, unknown>> {
  return (line) => {
    if (!line.startsWith('{')) return undefined;
    try {
      const record = JSON.parse(line) as Record<string, unknown>;
      return record.msg === msg ? record : undefined;
    } catch {
      return undefined; // not a log record: some other output
    }
  };
}
