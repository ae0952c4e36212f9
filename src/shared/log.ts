/**
 * Structured JSON logs, one line per event, with child loggers bound to context (gateway, room,
 * connection). Callers know only this interface; pino-logger.ts writes the lines.
 */
import { createPinoLogger, type PinoLoggerOptions } from './pino-logger.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export const LOG_LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/** A logger at `level` writing to stdout, or to `write` (one line per call, without the newline). */
export function createLogger(options: PinoLoggerOptions): Logger {
  return options.level === 'silent' ? silentLogger : createPinoLogger(options);
}

const nothing = () => {};

/** For tests and tools that want no output. */
export const silentLogger: Logger = { debug: nothing, info: nothing, warn: nothing, error: nothing, child: () => silentLogger };
