/**
 * Structured JSON logs, one line per event, with child loggers bound to context (gateway, room,
 * connection). Long values are cut short so a log line never carries a whole payload.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
export const LOG_LEVELS = Object.keys(LEVEL_RANK) as LogLevel[];

const MAX_VALUE_LENGTH = 200;

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

const STACK_FRAMES = 6;

function shorten(value: unknown): unknown {
  if (typeof value === 'string' && value.length > MAX_VALUE_LENGTH) return `${value.slice(0, MAX_VALUE_LENGTH)}…`;
  if (value instanceof Error) {
    const cause = (value as { cause?: unknown }).cause;
    // The first frames of the stack: enough to find the line without a log line the size of a page.
    const stack = value.stack?.split('\n').slice(1, 1 + STACK_FRAMES).map((frame) => frame.trim()).join(' | ');
    return {
      name: value.name, message: shorten(value.message), ...(stack ? { stack } : {}),
      ...(cause === undefined ? {} : { cause: shorten(String(cause)) }),
    };
  }
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
  return value;
}

export function createLogger(options: { level: LogLevel; write?: (line: string) => void; bound?: LogFields }): Logger {
  const threshold = LEVEL_RANK[options.level];
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const bound = options.bound ?? {};
  const emit = (level: LogLevel, message: string, fields?: LogFields) => {
    if (LEVEL_RANK[level] < threshold) return;
    const record: LogFields = { time: new Date().toISOString(), level, msg: message, ...bound };
    if (fields) for (const [key, value] of Object.entries(fields)) record[key] = shorten(value);
    write(JSON.stringify(record));
  };
  return {
    debug: (message, fields) => emit('debug', message, fields),
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
    child: (fields) => createLogger({ level: options.level, write, bound: { ...bound, ...fields } }),
  };
}

/** For tests and tools that want no output. */
export const silentLogger: Logger = createLogger({ level: 'silent' });
