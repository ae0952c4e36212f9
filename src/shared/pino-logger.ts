/**
 * The Logger (log.ts) on pino: one JSON object per line with `level` as its label ("info", as the
 * tests, the bench harness and operators' greps expect), an ISO `time` and `msg`. Errors in any
 * field keep their whole stack and cause chain (pino's serializer); long strings and byte arrays
 * are cut short so a line never carries a whole payload. The only file that imports pino.
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { LogFields, Logger, LogLevel } from './log.js';

const MAX_VALUE_LENGTH = 200;

function shorten(value: unknown): unknown {
  if (typeof value === 'string' && value.length > MAX_VALUE_LENGTH) return `${value.slice(0, MAX_VALUE_LENGTH)}…`;
  if (value instanceof Error) return pino.stdSerializers.errWithCause(value);
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
  return value;
}

export interface PinoLoggerOptions {
  level: LogLevel;
  /** Receives each line without its newline; default: stdout. */
  write?: (line: string) => void;
  /** Fields on every line (service name, ...). */
  bound?: LogFields;
}

export function createPinoLogger(options: PinoLoggerOptions): Logger {
  const write = options.write;
  // process.stdout, not pino's own fd writer: lines stay in order with the other stdout output (the
  // all-in-one's guide) and nothing is lost when the process exits right after logging.
  const destination: DestinationStream = write
    ? { write: (chunk: string) => write(chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk) }
    : { write: (chunk: string) => process.stdout.write(chunk) };
  const root = pino({
    level: options.level,
    base: options.bound ?? null,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ level: label }),
      log: (fields) => Object.fromEntries(Object.entries(fields).map(([key, value]) => [key, shorten(value)])),
    },
  }, destination);
  return wrap(root);
}

function wrap(logger: PinoLogger): Logger {
  return {
    debug: (message, fields) => logger.debug(fields ?? {}, message),
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
    error: (message, fields) => logger.error(fields ?? {}, message),
    child: (fields) => wrap(logger.child(Object.fromEntries(Object.entries(fields).map(([key, value]) => [key, shorten(value)])))),
  };
}
