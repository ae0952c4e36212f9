/**
 * `roomcast autoscaler --dry-run` as an operator runs it (the built CLI): it takes the Lease, logs a
 * decision per period without writing anything, and gives the Lease up on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { FakeKubeApi } from '../helpers/fake-kube-api.js';
import { eventually } from '../helpers/latch.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'roomcast-autoscaler-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('dry run: decides and logs, writes nothing, releases the Lease on SIGTERM', async () => {
  if (!existsSync(CLI)) throw new Error('dist/src/cli.js is missing: run `npm run build` (npm test does)');
  const fake = new FakeKubeApi('roomcast', 'cli-token');
  const server = await fake.listen();
  fake.addDeployment('roomcast-gateway', 5, { app: 'gw' });
  writeFileSync(join(dir, 'kubeconfig'), [
    'apiVersion: v1', 'kind: Config', 'current-context: c',
    'clusters:', '- name: k', `  cluster: {server: "${server}", insecure-skip-tls-verify: true}`,
    'users:', '- name: u', '  user: {token: "cli-token"}',
    'contexts:', '- name: c', '  context: {cluster: k, user: u, namespace: roomcast}',
  ].join('\n'));
  writeFileSync(join(dir, 'schedule.json'), JSON.stringify({ events: [{ name: 'finals', start: new Date(Date.now() + 60_000).toISOString(), end: new Date(Date.now() + 3_600_000).toISOString(), expectedViewers: 400_000 }] }));
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('ROOMCAST_') && !name.startsWith('KUBERNETES_')));
  Object.assign(env, {
    ROOMCAST_KUBECONFIG: join(dir, 'kubeconfig'), ROOMCAST_AUTOSCALER_HTTP_HOST: '127.0.0.1', ROOMCAST_AUTOSCALER_HTTP_PORT: '0',
    ROOMCAST_SCHEDULE_FILE: join(dir, 'schedule.json'), ROOMCAST_POD_NAME: 'autoscaler-cli', ROOMCAST_AUTOSCALER_PERIOD_MS: '500', ROOMCAST_SCRAPE_TIMEOUT_MS: '200',
  });
  const child = spawn(process.execPath, [CLI, 'autoscaler', '--dry-run'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  try {
    const decision = await eventually(() => output.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.msg === 'decision'), { what: `a decision line in:\n${output}` });
    // The schedule floor (400k / 50k per gateway) wants 8; dry run writes nothing.
    expect(decision).toMatchObject({ current: 5, desired: 8, action: 'up', dryRun: true, applied: false, events: ['finals'], reasons: ['floor:schedule'] });
    expect(fake.lease('roomcast-autoscaler')!.spec.holderIdentity).toBe('autoscaler-cli');
    expect(fake.requests.filter((r) => r.method === 'PATCH')).toEqual([]);
    expect(fake.deployment('roomcast-gateway').spec.replicas).toBe(5);
    // It names the port it bound for the 0 it was given.
    const { httpPort } = output.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.msg === 'listening');
    expect((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status).toBe(200);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(fake.lease('roomcast-autoscaler')!.spec.holderIdentity).toBeUndefined();
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await fake.close();
  }
});

it('reports every bad setting at once and exits with 2', async () => {
  const { spawnSync } = await import('node:child_process');
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('ROOMCAST_')));
  const result = spawnSync(process.execPath, [CLI, 'autoscaler', '--min-replicas', '0', '--target-cpu-utilization', 'high'], {
    env: { ...env, ROOMCAST_AUTOSCALER_PERIOD_MS: '10' }, encoding: 'utf8',
  });
  expect(result.status).toBe(2);
  expect(result.stderr).toContain('invalid configuration');
  expect(result.stderr).toContain('ROOMCAST_MIN_REPLICAS (--min-replicas) must be an integer from 1');
  expect(result.stderr).toContain('ROOMCAST_TARGET_CPU_UTILIZATION (--target-cpu-utilization) must be a number');
  expect(result.stderr).toContain('ROOMCAST_AUTOSCALER_PERIOD_MS (--autoscaler-period-ms) must be an integer from 500');
});
