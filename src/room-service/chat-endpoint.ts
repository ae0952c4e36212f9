/**
 * The room service's side of `svc.chat.<op>`: a request carries a gateway's frames of one op and one
 * window; each frame's caller and frame are checked again (the bus is a process boundary) and answered
 * by its type's handler, all of them at once (their store calls go out in one pipeline), each with its
 * own answer. The subjects and checks come from CHAT_REQUESTS, the handlers from the table the
 * composition root builds. Replicas share the subjects through the queue group.
 */
import type { Bus, Subscription } from '../shared/bus/bus.js';
import { admittedBatch, failureReply, serve, type AdmissionGate } from '../shared/bus/rpc.js';
import { fail } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { RoomServiceMetrics } from '../shared/metrics.js';
import { ROOM_SERVICE_QUEUE, subjects } from '../shared/protocol/bus-messages.js';
import type {
  ChatBatchReply, ChatBatchRequest, ChatCaller, ChatLogin, ChatLoginsReply, ChatLoginsRequest, ChatReply, ChatRequest,
} from '../shared/protocol/chat-bus-messages.js';
import type { ChatOp } from '../shared/protocol/chat-frames.js';
import { CHAT_OPS, isChatClientFrameType, isUidValue, parseChatFrame, type InboxFrame } from '../shared/protocol/chat-frames.js';
import { ROLES } from '../shared/protocol/frames.js';
import { handleChatFrame, type ChatHandlers } from './chat-handlers.js';
import { measuredRequest } from './service-calls.js';

export interface ChatEndpointDeps {
  bus: Bus;
  handlers: ChatHandlers;
  /** The login push of a new connection (device policy, newest messages, unread groups, invites). */
  login(caller: ChatCaller, connectedAtMs: number): Promise<InboxFrame>;
  log: Logger;
  metrics: RoomServiceMetrics;
  /** The replica's bounded queue, shared with the room requests. */
  admission?: AdmissionGate;
}

/** The most logins one request may carry (gateways send at most LOGINS_PER_REQUEST). */
const MAX_LOGINS_PER_REQUEST = 1000;
/** Far above a gateway's own batch size (128): a bound on what one request may ask for. */
const MAX_FRAMES_PER_REQUEST = 1000;

export class ChatEndpoint {
  private readonly subscriptions: Subscription[] = [];

  constructor(private readonly deps: ChatEndpointDeps) {}

  start(): void {
    const { bus, log } = this.deps;
    const onInternalError = (op: string) => (error: unknown) => log.error('chat request failed', { op, error });
    for (const op of CHAT_OPS) {
      // Not gated as one request: batch() admits each frame of the batch on its own.
      this.subscriptions.push(serve(bus, subjects.chat(op), ROOM_SERVICE_QUEUE,
        (request: ChatBatchRequest) => this.batch(op, request, onInternalError(op)), onInternalError(op)));
    }
    this.subscriptions.push(serve(bus, subjects.chat('logins'), ROOM_SERVICE_QUEUE,
      (request: ChatLoginsRequest) => this.measured('chat_logins', () => this.logins(request)), onInternalError('logins'), this.deps.admission));
  }

  stop(): void {
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
  }

  /**
   * A gateway's frames of one op and window, answered together and each on its own: one failing frame
   * fails only itself. The bounded queue counts each frame, and takes on or refuses (`overloaded`) the
   * batch whole.
   */
  private async batch(op: ChatOp, request: ChatBatchRequest, onInternalError: (error: unknown) => void): Promise<ChatBatchReply> {
    const requests = request?.requests;
    if (!Array.isArray(requests) || requests.length > MAX_FRAMES_PER_REQUEST) {
      throw fail.bad_request(`'requests' must be a list of at most ${MAX_FRAMES_PER_REQUEST} chat frames`);
    }
    return admittedBatch(this.deps.admission, requests.length, async () => ({
      results: await Promise.all(requests.map((one: ChatRequest) => this.measured(`chat_${op}`, () => this.frame(one)).then(
        (ok) => ({ ok }),
        (error: unknown) => failureReply(error, onInternalError),
      ))),
    }));
  }

  /** The logins of the connections a gateway opened in one tick; each fails alone (null: no push). */
  private async logins(request: ChatLoginsRequest): Promise<ChatLoginsReply> {
    const logins = request?.logins;
    if (!Array.isArray(logins) || logins.length > MAX_LOGINS_PER_REQUEST) {
      throw fail.bad_frame(`'logins' must be a list of at most ${MAX_LOGINS_PER_REQUEST} logins`);
    }
    const frames = await Promise.all(logins.map((login: ChatLogin) => this.login(login).catch((error: unknown) => {
      this.deps.log.warn('chat login failed', { uid: login?.caller?.uid, error });
      return null;
    })));
    return { frames };
  }

  /** The device policy, then the login push (newest messages, unread groups, invites). */
  private async login(login: ChatLogin): Promise<InboxFrame> {
    const caller = checkCaller(login?.caller);
    if (typeof login.connectedAtMs !== 'number') throw fail.bad_frame("'connectedAtMs' must be a number");
    return this.deps.login(caller, login.connectedAtMs);
  }

  private frame(request: ChatRequest): Promise<ChatReply> {
    const caller = checkCaller(request?.caller);
    const raw = request.frame as unknown;
    if (typeof raw !== 'object' || raw === null || typeof (raw as { t?: unknown }).t !== 'string' || !isChatClientFrameType((raw as { t: string }).t)) {
      throw fail.bad_frame('not a chat frame');
    }
    return handleChatFrame(this.deps.handlers, caller, parseChatFrame((raw as { t: Parameters<typeof parseChatFrame>[0] }).t, raw as Record<string, unknown>));
  }

  private measured<T>(op: string, work: () => Promise<T>): Promise<T> {
    return measuredRequest(this.deps.metrics, op, work);
  }
}

function checkCaller(value: unknown): ChatCaller {
  const caller = value as Partial<ChatCaller> | undefined;
  if (!caller || !isUidValue(caller.uid) || !(ROLES as readonly unknown[]).includes(caller.role)
    || typeof caller.device !== 'string' || typeof caller.gatewayId !== 'string' || typeof caller.connId !== 'string') {
    throw fail.bad_frame('the request needs a caller');
  }
  return caller as ChatCaller;
}
