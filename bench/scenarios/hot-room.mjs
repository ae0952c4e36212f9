/**
 * hot-room: one room, many viewers, a few senders ramping the message rate. Every message goes to
 * every connection in the room (viewers and senders), so deliveries = messages × connections.
 */
import { removeRecording, runLoadSteps } from './load-steps.mjs';
import { runOrder, startSystem } from './systems.mjs';
import { connectionsAllowed } from './limits.mjs';
import { hardNofile } from '../lib/processes.mjs';

const ROOM = 'hot';

export const hotRoom = {
  name: 'hot-room',
  defaults: { viewers: 10000, senders: 4, rates: [10, 20, 50, 100, 200, 500, 1000, 2000] },
  async run({ group, options, progress }) {
    const targets = [];
    const allowed = connectionsAllowed();
    const wanted = options.viewers;
    if (options.viewers + options.senders > allowed) {
      if (wanted !== Infinity) progress(`hot-room: ${options.viewers + options.senders} connections exceed what one server process may open here (open-file limit); running ${allowed - options.senders} viewers`);
      options.viewers = allowed - options.senders;
    }
    for (const target of runOrder(options.targets)) {
      progress(`hot-room: ${target}, ${options.viewers} viewers + ${options.senders} senders, rates ${options.rates.join(', ')} msg/s`);
      const system = await startSystem(group, target, options);
      try {
        targets.push(await runLoadSteps({
          group, system, options, progress,
          // The limit peers publish what Roomcast produced at each step: its steps are the reference.
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
    // Roomcast's recorded frames, once every limit peer has replayed them.
    removeRecording(targets.find((t) => t.target === 'roomcast')?.frameRecording);
    // The room's size, and whether the open-file limit set it (README: "What runs where").
    const capped = options.viewers < wanted;
    progress(`hot-room: ${options.viewers} viewers + ${options.senders} senders = ${options.viewers + options.senders} connections${capped ? `, the most one server process may hold here (open-file limit ${hardNofile})` : ''}`);
    return { viewers: options.viewers, senders: options.senders, connectionsAllowed: allowed, cappedByOpenFileLimit: capped, targets };
  },
};
