/**
 * Scheduled streams: operators announce big events in a JSON file
 * (`{"events":[{"name","start","end","expectedViewers"}]}`) so the autoscaler can pre-scale before
 * the crowd arrives and hold capacity until it has left.
 */
import { ConfigError } from '../shared/errors.js';

export interface ScheduledEvent {
  name: string;
  startMs: number;
  endMs: number;
  expectedViewers: number;
}

/** Parses the schedule file's text. Throws ConfigError listing every problem. */
export function parseSchedule(text: string, source = 'schedule'): ScheduledEvent[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new ConfigError([`${source}: not valid JSON (${(error as Error).message})`]);
  }
  const rawEvents = (doc as { events?: unknown } | null)?.events;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(rawEvents)) throw new ConfigError([`${source}: expected {"events": [...]}`]);
  const problems: string[] = [];
  const events: ScheduledEvent[] = [];
  rawEvents.forEach((raw: unknown, i) => {
    const at = `${source}: events[${i}]`;
    if (typeof raw !== 'object' || raw === null) { problems.push(`${at} must be an object`); return; }
    const e = raw as Record<string, unknown>;
    const name = typeof e.name === 'string' && e.name !== '' ? e.name : null;
    if (!name) problems.push(`${at}.name must be a non-empty string`);
    const startMs = typeof e.start === 'string' ? Date.parse(e.start) : NaN;
    const endMs = typeof e.end === 'string' ? Date.parse(e.end) : NaN;
    if (Number.isNaN(startMs)) problems.push(`${at}.start must be an ISO 8601 time`);
    if (Number.isNaN(endMs)) problems.push(`${at}.end must be an ISO 8601 time`);
    if (!Number.isNaN(startMs) && !Number.isNaN(endMs) && endMs <= startMs) problems.push(`${at}.end must be after start`);
    const viewers = e.expectedViewers;
    if (typeof viewers !== 'number' || !Number.isSafeInteger(viewers) || viewers < 0) problems.push(`${at}.expectedViewers must be a whole number ≥ 0`);
    if (name && !Number.isNaN(startMs) && !Number.isNaN(endMs) && typeof viewers === 'number') {
      events.push({ name, startMs, endMs, expectedViewers: viewers });
    }
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return events;
}

export interface ScheduleWindow {
  /** Pre-scale this long before an event starts. */
  leadMs: number;
  /** Keep the capacity this long after an event ends. */
  holdMs: number;
}

/** Events whose window (start − lead … end + hold) contains `nowMs`. */
export function activeEvents(events: readonly ScheduledEvent[], nowMs: number, window: ScheduleWindow): ScheduledEvent[] {
  return events.filter((e) => nowMs >= e.startMs - window.leadMs && nowMs <= e.endMs + window.holdMs);
}
