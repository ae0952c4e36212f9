/**
 * Frames a client sends while its token is still being checked: held (a few) and handled in order
 * right after the welcome; a flood of them closes the connection. The token check is held back on purpose,
 * so the frames really arrive before it ends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FRAMES_BEFORE_WELCOME } from '../../src/gateway/uws-server.js';
import { createTokenVerifier, type TokenVerifier } from '../../src/shared/auth.js';
import { startCluster, TEST_SECRET, type Cluster } from '../helpers/cluster.js';
import { WsTestClient } from '../helpers/ws-client.js';

let cluster: Cluster;
let url: string;
/** Token checks wait for this; each test opens and releases it. */
let release: () => void = () => undefined;
let checked: Promise<void> = Promise.resolve();

function holdTokenChecks(): void {
  checked = new Promise((resolve) => { release = resolve; });
}

beforeAll(async () => {
  cluster = await startCluster({ mode: 'embedded', gateways: 0, roomServices: 1 });
  await cluster.createRoom('early');
  const verify = await createTokenVerifier({ secret: TEST_SECRET });
  const heldVerify: TokenVerifier = async (token) => { await checked; return verify(token); };
  url = (await cluster.addGateway('gw0', {}, heldVerify)).url;
});

afterAll(async () => {
  release();
  await cluster?.stop();
});

describe('frames before the welcome', () => {
  it('are held while the token is checked and handled in order after the welcome', async () => {
    holdTokenChecks();
    const client = await WsTestClient.connect(url, { token: await cluster.token('eager') });
    client.send({ t: 'ping', ts: 1 });
    client.send({ t: 'join', room: 'early' });
    client.send({ t: 'ping', ts: 2 });
    // Nothing is answered before the token is checked.
    client.send({ t: 'ping', ts: 3 });
    expect(client.frames).toEqual([]);
    release();
    await client.next((f) => f.t === 'pong' && f.ts === 3);
    await client.next((f) => f.t === 'joined' && f.room === 'early');
    expect(client.frames[0]!.t).toBe('welcome');
    // Every held frame was handled, in the order sent (a join's answer waits for the room service).
    expect(client.frames.filter((f) => f.t === 'pong').map((f) => f.ts)).toEqual([1, 2, 3]);
    client.close();
  });

  it(`close the connection with 4000 when more than ${MAX_FRAMES_BEFORE_WELCOME} arrive`, async () => {
    holdTokenChecks();
    const client = await WsTestClient.connect(url, { token: await cluster.token('impatient') });
    for (let i = 0; i <= MAX_FRAMES_BEFORE_WELCOME; i++) client.send({ t: 'ping', ts: i });
    expect(await client.closed()).toBe(4000);
    release();
    expect(client.frames.filter((f) => f.t === 'pong')).toEqual([]);
  });
});
