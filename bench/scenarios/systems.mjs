/** Starts the system a scenario measures: Roomcast's real topology, or one of the peers. */
import { LIMIT_PEERS, isLimitPeer, startPeer, startRoomcast } from '../lib/topology.mjs';

/** The names `--targets` accepts. */
export const TARGETS = ['roomcast', ...LIMIT_PEERS, 'ws', 'socketio'];

/**
 * The order targets run in: as given, except that the limit peers run right after Roomcast (`limit`
 * first), because they publish the batches Roomcast produced at each step.
 */
export function runOrder(targets) {
  if (!targets.includes('roomcast')) return targets;
  const limits = LIMIT_PEERS.filter((target) => targets.includes(target));
  const rest = targets.filter((target) => !isLimitPeer(target));
  rest.splice(rest.indexOf('roomcast') + 1, 0, ...limits);
  return rest;
}

/**
 * @param {import('../lib/processes.mjs').ProcessGroup} group
 * @param {string} target one of TARGETS
 * @param {object} options parsed flags (cores, profile directory, Socket.IO nodes)
 * @param {Record<string, string>} [env] extra ROOMCAST_* settings
 */
export function startSystem(group, target, options, env = {}) {
  if (target === 'roomcast') {
    return startRoomcast(group, { gatewayCpu: options.serverCpu, otherCpu: options.loadCpu, serviceCpu: options.serviceCpu, redis: options.redis, env: { ...options.env, ...env }, profileDir: options.profileDir });
  }
  return startPeer(group, target, { cpu: options.serverCpu, otherCpu: options.loadCpu, nodes: target === 'socketio' ? options.socketioNodes : 1 });
}
