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
  const reply = decodeBusMessage(bytes) as Reply<Res>;
  if ('ok' in reply) return reply.ok;
  const { code, message } = reply.err;
  throw errorFromWire(code, message);
}

/**
 * Answers requests on `subject` in `queue`. Failures are answered with their code; ones that are not
 * RoomcastErrors are also passed to `onInternalError` (they are bugs or outages worth a log line).
 */
export function serve<Req, Res>(
  bus: Bus,
  subject: string,
  queue: string,
  handler: (request: Req) => Promise<Res>,
  onInternalError: (error: unknown) => void,
): Subscription {
  return bus.subscribe(subject, (message) => {
    let request: Req;
    try {
      request = decodeBusMessage(message.data) as Req;
    } catch (error) {
      message.respond(encodeBusMessage(errorReply(toRoomcastError(error))));
      return;
    }
    handler(request).then(
      (ok) => message.respond(encodeBusMessage({ ok } satisfies Reply<Res>)),
      (error: unknown) => {
        const failure = toRoomcastError(error);
        if (!(error instanceof RoomcastError)) onInternalError(error);
        message.respond(encodeBusMessage(errorReply(failure)));
      },
    );
  }, { queue });
}

function errorReply(error: RoomcastError): Reply<never> {
  return { err: { code: error.code, message: error.message } };
}
