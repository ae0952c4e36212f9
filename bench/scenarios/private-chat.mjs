/**
 * private-chat: pairs of users, each sending 1:1 messages (`pm`) to the other at a share of the
 * offered rate. Each message is stored before `sent` answers it, pushed to the peer's connection in
 * an `inbox` frame and acknowledged with `inbox_ack`. Measures delivery latency (scheduled send →
 * the peer's inbox push), store latency (scheduled send → `sent`), and checks that every stored
 * message arrived once with a gap-free inbox seq. Roomcast only: the peers have no private chat.
 */
import { runLoadSteps } from './load-steps.mjs';
import { startSystem } from './systems.mjs';
import { connectionsAllowed } from './limits.mjs';

export const privateChat = {
  name: 'private-chat',
  defaults: { targets: ['roomcast'], connections: 2000, rates: [100, 200, 500, 1000, 2000, 5000] },
  async run({ group, options, progress }) {
    // An even number of users: user i talks to user i ^ 1.
    const users = Math.min(options.connections, connectionsAllowed()) & ~1;
    const targets = [];
    for (const target of options.targets) {
      if (target !== 'roomcast') { progress(`private-chat: skipping ${target} (the peers have no private chat)`); continue; }
      progress(`private-chat: ${users / 2} pairs, total rates ${options.rates.join(', ')} msg/s`);
      // Per-user chat limits raised so the offered load is not refused (10/s by default).
      const system = await startSystem(group, target, options, { ROOMCAST_CHAT_RATE_PER_SEC: '100000', ROOMCAST_CHAT_BURST: '1000000' });
      try {
        targets.push(await runLoadSteps({
          group, system, options, progress, mode: 'pm', rooms: [],
          // Every user sends: the load generators are all senders.
          shares: [{ role: 'sender', count: users, workers: options.workers, rooms: { prefix: 'none', count: 1 } }],
          recipientsPerMessage: () => 1,
        }));
      } finally {
        await system.stop();
      }
    }
    return { targets };
  },
};
