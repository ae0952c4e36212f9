/** Composition root of the room service: the service on the bus, its view of the fleet, and its HTTP API. */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { TokenVerifier } from '../shared/auth.js';
import { systemClock } from '../shared/clock.js';
import type { Config } from '../shared/config.js';
import type { GatewayDirectory } from '../shared/fleet/gateway-directory.js';
import { GatewayRegistry } from '../shared/fleet/gateway-registry.js';
import type { Infrastructure } from '../shared/infrastructure.js';
import type { Logger } from '../shared/log.js';
import { RoomServiceMetrics, type MetricsRegistry } from '../shared/metrics.js';
import { GatewayDispatch } from './gateway-dispatch.js';
import { ChatEndpoint } from './chat-endpoint.js';
import { chatHttpRoutes } from './chat-http-api.js';
import { ChatRouting } from './chat-routing.js';
import { ChatService } from './chat-service.js';
import { ConversationList } from './conversation-list.js';
import { DeliveryRepair, SendActivity } from './delivery-repair.js';
import { SLOT_COUNT } from '../shared/store/key-slot.js';
import { GroupService } from './group-service.js';
import { Admission } from './admission.js';
import { HttpApi } from './http-api.js';
import { OpsHttp } from './ops-http.js';
import { RecipientRouter } from './recipient-router.js';
import { RoomService } from './room-service.js';
import { ViewerTotals } from './viewer-totals.js';

export interface RunningRoomService {
  service: RoomService;
  api: HttpApi;
  apiPort: number;
  /** The ops port (/metrics), when this service serves one. */
  metricsPort: number | null;
  /** The gateway fleet as this service sees it (dispatch, routing). */
  gateways: GatewayDirectory;
  stop(): Promise<void>;
}

/**
 * `opsPort`: where /metrics, /healthz and /readyz are served apart from the API; null when another
 * part of the process serves the registry (the all-in-one's gateway).
 */
export async function startRoomService(
  config: Config, infra: Infrastructure, verifyToken: TokenVerifier | null, metricsRegistry: MetricsRegistry, log: Logger,
  opsPort: number | null = null,
): Promise<RunningRoomService> {
  const metrics = new RoomServiceMetrics(metricsRegistry);
  const serviceLog = log.child({ component: 'room-service' });
  // The fleet (live gateways, viewer counts) from the bus, held in memory: no Redis read per request.
  const registry = new GatewayRegistry({ bus: infra.bus, clock: systemClock, log: serviceLog, heartbeatMs: config.registryHeartbeatMs });
  registry.start();
  const viewers = new ViewerTotals({
    bus: infra.bus, clock: systemClock, log: serviceLog, gateways: registry, instanceId: roomServiceInstanceId(), intervalMs: config.viewerIntervalMs,
  });
  viewers.start();
  const router = new RecipientRouter({ sessions: infra.sessionStore, gateways: registry, bus: infra.bus });
  const admission = new Admission({ maxPending: config.maxPendingRequests, maxLoopLagMs: config.maxLoopLagMs }, metrics);
  admission.start();
  const service = new RoomService({
    store: infra.roomStore, bus: infra.bus, router, clock: systemClock, log: serviceLog, metrics, admission,
    limits: {
      maxTextLength: config.maxTextLength,
      historyPageMax: config.historyPageMax,
      sendRate: { ratePerSec: config.sendRatePerSec, burst: config.sendBurst },
      autoCreateRooms: config.autoCreateRooms,
    },
    viewers: (room) => viewers.count(room),
    noteAppended: (room, seq) => viewers.noteAppended(room, seq),
  });
  service.start();
  const sendActivity = new SendActivity();
  const routing = new ChatRouting({ router, bus: infra.bus, log: serviceLog.child({ component: 'chat' }), metrics });
  const chat = new ChatService({
    sendActivity,
    inbox: infra.inboxStore, router, routing, bus: infra.bus, clock: systemClock, log: serviceLog.child({ component: 'chat' }), metrics,
    limits: {
      maxTextLength: config.maxTextLength,
      rate: { ratePerSec: config.chatRatePerSec, burst: config.chatBurst },
      syncPage: config.syncPage,
      loginPush: config.loginPush,
      historyPageMax: config.historyPageMax,
      devicePolicy: config.devicePolicy,
    },
  });
  const repair = new DeliveryRepair({
    chat, activity: sendActivity, clock: systemClock, log: serviceLog.child({ component: 'delivery-repair' }), graceMs: config.chatRepairGraceMs,
    // The Redis store visits chatRepairSlotsPerSec per-slot outboxes a round.
    roundsPerPass: config.redisUrl ? Math.ceil(SLOT_COUNT / config.chatRepairSlotsPerSec) : 1,
  });
  repair.start();
  const groups = new GroupService({
    groups: infra.groupStore, routing, blocks: infra.inboxStore, clock: systemClock, metrics,
    limits: {
      maxTextLength: config.maxTextLength,
      rate: { ratePerSec: config.chatRatePerSec, burst: config.chatBurst },
      syncPage: config.syncPage,
      membersPage: config.historyPageMax,
    },
    policy: { create: config.groupCreate, invites: config.groupInvites },
  });
  const conversations = new ConversationList({ inbox: infra.inboxStore, groups, metrics, pageMax: config.syncPage });
  const chatEndpoint = new ChatEndpoint({
    bus: infra.bus, log: serviceLog, metrics, admission,
    handlers: { ...chat.handlers, ...groups.handlers, convs: conversations.handler },
    login: async (caller, connectedAtMs) => {
      const push = await chat.login(caller, connectedAtMs);
      // Groups with unread messages come with the login push, so a client syncs them without asking;
      // invites sent while the user was offline are learnt here, not from a push.
      const [summaries, invites] = await Promise.all([groups.summaries(caller.uid), groups.invitesOf(caller.uid)]);
      push.groups = summaries.filter((group) => group.unread > 0);
      if (invites.length > 0) push.invites = invites;
      return push;
    },
  });
  chatEndpoint.start();
  let busConnected = true;
  infra.bus.onStatus((status) => { busConnected = status === 'reconnected'; });
  // Not ready until the registry has heard a whole heartbeat lifetime: before that, dispatch may not
  // know every gateway (or any), and the load balancer should send the API's callers elsewhere.
  const ready = () => busConnected && registry.warm;
  const api = new HttpApi({
    service, dispatch: new GatewayDispatch({ gateways: registry }), verifyToken, apiKeys: config.apiKeys, metrics, log: serviceLog, ready,
    limits: { requestTimeoutMs: config.apiRequestTimeoutMs, maxConnections: config.apiMaxConnections },
    extraRoutes: chatHttpRoutes(chat, groups),
  });
  const apiPort = await api.listen(config.apiHost, config.apiPort);
  const ops = opsPort === null ? null : new OpsHttp({ metricsRegistry, ready, log: serviceLog });
  const metricsPort = ops ? await ops.listen(config.apiHost, opsPort!) : null;
  serviceLog.info('room service listening', {
    api: `http://${config.apiHost}:${apiPort}/v1/rooms`, ...(metricsPort === null ? {} : { metrics: `http://${config.apiHost}:${metricsPort}/metrics` }),
  });
  return {
    service, api, apiPort, metricsPort, gateways: registry,
    stop: async () => {
      service.stop();
      chatEndpoint.stop();
      viewers.stop();
      registry.stop();
      admission.stop();
      await repair.stop();
      await api.close();
      await ops?.close();
    },
  };
}

/** Unique per process run; the replica with the lowest one publishes the viewer totals. */
function roomServiceInstanceId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
}
