/**
 * hot-room: one room, many viewers, a few senders ramping the message rate. Every message goes to
 * every connection in the room (viewers and senders), so deliveries = messages × connections.
 */
import { runLoadSteps } from './load-steps.mjs';
import { runOrder, startSystem } from './systems.mjs';
import { connectionsAllowed } from './limits.mjs';

const ROOM = 'hot';

export const hotRoom = {
  name: 'hot-room',
  defaults: { viewers: 10000, senders: 4, rates: [10, 20, 50, 100, 200, 500, 1000, 2000] },
  async run({ group, options, progress }) {
    const targets = [];
    const allowed = connectionsAllowed();
    if (options.viewers + options.senders > allowed) {
      progress(`hot-room: ${options.viewers + options.senders} connections exceed what one server process may open here (open-file limit); running ${allowed - options.senders} viewers`);
      options.viewers = allowed - options.senders;
    }
    for (const target of runOrder(options.targets)) {
      progress(`hot-room: ${target}, ${options.viewers} viewers + ${options.senders} senders, rates ${options.rates.join(', ')} msg/s`);
      const system = await startSystem(group, target, options);
      try {
        targets.push(await runLoadSteps({
          group, system, options, progress,
          // The limit peer publishes what Roomcast produced at each step: its steps are the reference.
          reference: targets.find((t) => t.target === 'roomcast'), driveRooms: { prefix: ROOM, count: 1 },
          rooms: [ROOM],
          shares: [
            { role: 'sender', count: options.senders, workers: 1, rooms: { prefix: ROOM, count: 1 } },
            { role: 'viewer', count: options.viewers, workers: options.workers, rooms: { prefix: ROOM, count: 1 } },
          ],
          recipientsPerMessage: (joined) => joined,
        }));
      } finally {
        await system.stop();
      }
    }
    return { targets };
  },
};
