/**
 * group-chat: one group of `--members` (default 1,000) users, `--connections` of them online (default
 * 500), `--senders` of the online ones (default 4) sending `gm` at the offered rate. Each message is
 * stored once, acknowledged (`sent`) and pushed (`group_msgs`) to every online member but the sending
 * connection; the offline members get offline-push events. Measures delivery latency (scheduled send
 * → each member's push), store latency (→ `sent`) and server CPU per group message. Roomcast only.
 */
import { runLoadSteps } from './load-steps.mjs';
import { startSystem } from './systems.mjs';
import { connectionsAllowed } from './limits.mjs';
import { BENCH_API_KEY } from '../lib/topology.mjs';

const GROUP = 'bench-group';
/** Uids per membership request (the API's limit per call). */
const UIDS_PER_REQUEST = 500;

export const groupChat = {
  name: 'group-chat',
  defaults: { targets: ['roomcast'], connections: 500, members: 1000, senders: 4, rates: [10, 20, 50, 100, 200, 500] },
  async run({ group, options, progress }) {
    const online = Math.min(options.connections, connectionsAllowed());
    const members = Math.max(online, options.members ?? groupChat.defaults.members);
    const senders = Math.min(options.senders ?? groupChat.defaults.senders, online);
    const targets = [];
    for (const target of options.targets) {
      if (target !== 'roomcast') { progress(`group-chat: skipping ${target} (the peers have no group chat)`); continue; }
      progress(`group-chat: a group of ${members} members, ${online} online, ${senders} senders; rates ${options.rates.join(', ')} group msg/s`);
      const system = await startSystem(group, target, options, {
        ROOMCAST_CHAT_RATE_PER_SEC: '100000', ROOMCAST_CHAT_BURST: '1000000',
        ROOMCAST_MAX_GROUP_MEMBERS: String(Math.max(members, 1000)),
      });
      try {
        await createGroup(system.apiUrl, members);
        targets.push(await runLoadSteps({
          group, system, options, progress, mode: 'gm', rooms: [], chatGroup: GROUP,
          // Connection i is user u<i>: the senders first, then the other online members.
          shares: [
            { role: 'sender', count: senders, workers: 1, rooms: { prefix: 'none', count: 1 } },
            { role: 'viewer', count: online - senders, workers: options.workers, rooms: { prefix: 'none', count: 1 } },
          ],
          recipientsPerMessage: () => online - 1,
        }));
      } finally {
        await system.stop();
      }
    }
    return { targets };
  },
};

/** The group, owned by u0, with members u0 … u<members - 1>, created over the backend API. */
async function createGroup(apiUrl, members) {
  const uids = Array.from({ length: members }, (_, i) => `u${i}`);
  const call = async (method, path, body) => {
    const response = await fetch(`${apiUrl}${path}`, {
      method, headers: { authorization: `Bearer ${BENCH_API_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${await response.text()}`);
  };
  await call('PUT', `/v1/groups/${GROUP}`, { owner: 'u0', members: uids.slice(1, UIDS_PER_REQUEST) });
  for (let i = UIDS_PER_REQUEST; i < members; i += UIDS_PER_REQUEST) await call('POST', `/v1/groups/${GROUP}/members`, { uids: uids.slice(i, i + UIDS_PER_REQUEST) });
}
