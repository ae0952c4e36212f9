/**
 * Request-reply over the bus with typed payloads: a reply is either `{ ok }` or `{ err: { code,
 * message } }`, so a RoomcastError thrown by the server side arrives on the caller side with the same
 * stable code.
 */
import { RoomcastError, errorFromWire, toRoomcastError } from '../errors.js';
import type { Reply } from '../protocol/bus-messages.js';
import { decodeBusMessage, encodeBusMessage } from '../codec/codec.js';
import type { Bus, Subscription } from './bus.js';

export async function call<Req, Res>(bus: Bus, subject: string, request: Req, timeoutMs: number): Promise<Res> {
  const bytes = await bus.request(subject, encodeBusMessage(request), { timeoutMs });
  return unwrapReply(decodeBusMessage(bytes) as Reply<Res>);
}

/** A reply's result, or its error rebuilt with the same stable code. */
export function unwrapReply<Res>(reply: Reply<Res>): Res {
  if ('ok' in reply) return reply.ok;
  const { code, message, retryAfterMs } = reply.err;
  throw errorFromWire(code, message, retryAfterMs);
}

/** Decides, before any work, whether a request is taken on or refused at once (`overloaded`). */
export interface AdmissionGate {
  /**
   * Null when the work is admitted (then `done(weight)` follows), or the refusal to answer. `weight`
   * is how many requests it stands for (a batch of sends counts each send).
   */
  admit(weight?: number): RoomcastError | null;
  done(weight?: number): void;
}

/**
 * Runs `work` for a request that stands for `weight` requests (a gateway's batch), taken on or refused
 * (the gate's refusal thrown, at once) as a whole: its one reply must not wait for what was taken on
 * to say what was not.
 */
export async function admittedBatch<T>(gate: AdmissionGate | undefined, weight: number, work: () => Promise<T>): Promise<T> {
  const refusal = gate?.admit(weight) ?? null;
  if (refusal) throw refusal;
  try {
    return await work();
  } finally {
    gate?.done(weight);
  }
}

/**
 * Answers requests on `subject` in `queue`. Failures are answered with their code; ones that are not
 * RoomcastErrors are also passed to `onInternalError` (they are bugs or outages worth a log line).
 * With a gate, a request it refuses is answered at once, undecoded.
 */
export function serve<Req, Res>(
  bus: Bus,
  subject: string,
  queue: string,
  handler: (request: Req) => Promise<Res>,
  onInternalError: (error: unknown) => void,
  gate?: AdmissionGate,
): Subscription {
  return bus.subscribe(subject, (message) => {
    const refusal = gate?.admit() ?? null;
    if (refusal) {
      message.respond(encodeBusMessage(errorReply(refusal)));
      return;
    }
    let request: Req;
    try {
      request = decodeBusMessage(message.data) as Req;
    } catch (error) {
      gate?.done();
      message.respond(encodeBusMessage(errorReply(toRoomcastError(error))));
      return;
    }
    handler(request).then(
      (ok) => message.respond(encodeBusMessage({ ok } satisfies Reply<Res>)),
      (error: unknown) => message.respond(encodeBusMessage(failureReply(error, onInternalError))),
    ).finally(() => gate?.done()).catch((error: unknown) => {
      // The answer could not be sent: on a closed bus (shutdown) the requester's timeout covers it.
      if (toRoomcastError(error).code !== 'unavailable') onInternalError(error);
    });
  }, { queue });
}

/**
 * A failure as an answer, with its code; one that is not a RoomcastError is also passed to
 * `onInternalError` (a bug or an outage worth a log line).
 */
export function failureReply(error: unknown, onInternalError: (error: unknown) => void): Reply<never> {
  if (!(error instanceof RoomcastError)) onInternalError(error);
  return errorReply(toRoomcastError(error));
}

/** A failure as it crosses the bus: its code, message and retry hint. */
export function errorReply(error: RoomcastError): Reply<never> {
  const err = { code: error.code, message: error.message };
  return { err: error.retryAfterMs === undefined ? err : { ...err, retryAfterMs: error.retryAfterMs } };
}
