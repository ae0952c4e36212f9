/**
 * The last line of defence of a long-running process: a rejection that escaped every handler is a
 * bug, but not one that should take thousands of connections down with it, so it is logged with its
 * stack and counted (`roomcast_unhandled_rejections_total`). An uncaught exception leaves the process
 * in an unknown state: it is logged, then the process exits so that its supervisor restarts it.
 */
import type { Logger } from './log.js';
import type { MetricsRegistry } from './metrics.js';

export function guardProcess(log: Logger, metrics: MetricsRegistry, exit: (code: number) => void = process.exit): () => void {
  const onRejection = (reason: unknown) => {
    metrics.unhandledRejections.inc();
    log.error('unhandled rejection', { error: reason });
  };
  const onException = (error: Error) => {
    log.error('uncaught exception; exiting', { error });
    exit(1);
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.removeListener('unhandledRejection', onRejection);
    process.removeListener('uncaughtException', onException);
  };
}
