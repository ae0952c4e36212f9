/**
 * The schedule file (a mounted ConfigMap): read when its modification time changes, so an updated
 * ConfigMap takes effect without a restart. A missing file means no events; a broken one is
 * reported and the last good schedule stays in force.
 */
import { readFileSync, statSync } from 'node:fs';
import { ConfigError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { parseSchedule, type ScheduledEvent } from './schedule.js';

export class ScheduleFile {
  private events: ScheduledEvent[] = [];
  private loadedVersion: string | null = null;

  constructor(private readonly path: string, private readonly log: Logger, private readonly onError: () => void = () => undefined) {}

  /** The events in force now. */
  current(): readonly ScheduledEvent[] {
    let version: string;
    try {
      const stat = statSync(this.path);
      version = `${stat.mtimeMs}:${stat.size}`;
    } catch {
      if (this.loadedVersion !== 'missing') {
        if (this.loadedVersion !== null) this.log.warn('schedule file is gone; no scheduled events', { path: this.path });
        this.events = [];
        this.loadedVersion = 'missing';
      }
      return this.events;
    }
    if (version === this.loadedVersion) return this.events;
    this.loadedVersion = version;
    try {
      this.events = parseSchedule(readFileSync(this.path, 'utf8'), this.path);
      this.log.info('schedule loaded', { path: this.path, events: this.events.map((e) => e.name) });
    } catch (error) {
      this.onError();
      this.log.error('schedule file rejected; keeping the previous schedule', { path: this.path, problems: error instanceof ConfigError ? error.problems : String(error) });
    }
    return this.events;
  }
}
