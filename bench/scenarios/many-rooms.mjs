/**
 * many-rooms: many small rooms (1,000 × 20 viewers by default), one sending connection per room;
 * the offered rate is the total over all rooms, spread evenly. Deliveries = messages × (viewers + 1).
 */
import { hardNofile } from '../lib/processes.mjs';
import { removeRecording, runLoadSteps } from './load-steps.mjs';
import { runOrder, startSystem } from './systems.mjs';
import { connectionsAllowed } from './limits.mjs';

const ROOM_PREFIX = 'r';

export const manyRooms = {
  name: 'many-rooms',
  defaults: { rooms: 1000, viewersPerRoom: 20, rates: [100, 200, 500, 1000, 2000, 5000] },
  async run({ group, options, progress }) {
    let perRoom = options.viewersPerRoom;
    const allowed = connectionsAllowed();
    if (options.rooms * (perRoom + 1) > allowed) {
      perRoom = Math.floor(allowed / options.rooms) - 1;
      progress(`many-rooms: ${options.rooms} × ${options.viewersPerRoom + 1} connections exceed the open-file limit (${hardNofile}) of one server process here;` +
        ` running ${options.rooms} × ${perRoom} viewers (+1 sender) instead`);
      if (perRoom < 1) throw new Error('too many rooms for this machine\'s open-file limit: lower --rooms');
    }
    const rooms = Array.from({ length: options.rooms }, (_, i) => `${ROOM_PREFIX}${i}`);
    const targets = [];
    for (const target of runOrder(options.targets)) {
      progress(`many-rooms: ${target}, ${options.rooms} rooms × (${perRoom} viewers + 1 sender), total rates ${options.rates.join(', ')} msg/s`);
      const system = await startSystem(group, target, options);
      try {
        targets.push(await runLoadSteps({
          group, system, options, progress,
          // The limit peers publish what Roomcast produced at each step: its steps are the reference.
          reference: targets.find((t) => t.target === 'roomcast'), driveRooms: { prefix: ROOM_PREFIX, count: options.rooms }, rooms,
          shares: [
            { role: 'sender', count: options.rooms, workers: 1, rooms: { prefix: ROOM_PREFIX, count: options.rooms } },
            { role: 'viewer', count: options.rooms * perRoom, workers: options.workers, rooms: { prefix: ROOM_PREFIX, count: options.rooms } },
          ],
          recipientsPerMessage: (joined) => joined / options.rooms,
        }));
      } finally {
        await system.stop();
      }
    }
    // Roomcast's recorded frames, once every limit peer has replayed them.
    removeRecording(targets.find((t) => t.target === 'roomcast')?.frameRecording);
    return { viewersPerRoom: perRoom, targets };
  },
};
