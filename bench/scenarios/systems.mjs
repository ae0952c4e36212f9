/** Starts the system a scenario measures: Roomcast's real topology, or one of the peers. */
import { startPeer, startRoomcast } from '../lib/topology.mjs';

/** The names `--targets` accepts. */
export const TARGETS = ['roomcast', 'ws', 'socketio'];

/**
 * @param {import('../lib/processes.mjs').ProcessGroup} group
 * @param {string} target one of TARGETS
 * @param {object} options parsed flags (cores, profile directory, Socket.IO nodes)
 * @param {Record<string, string>} [env] extra ROOMCAST_* settings
 */
export function startSystem(group, target, options, env = {}) {
  if (target === 'roomcast') {
    return startRoomcast(group, { gatewayCpu: options.serverCpu, otherCpu: options.loadCpu, serviceCpu: options.serviceCpu, env: { ...options.env, ...env }, profileDir: options.profileDir });
  }
  return startPeer(group, target, { cpu: options.serverCpu, otherCpu: options.loadCpu, nodes: target === 'socketio' ? options.socketioNodes : 1 });
}
