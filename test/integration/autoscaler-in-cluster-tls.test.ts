/**
 * The in-cluster configuration over TLS: a CA and a server certificate made with openssl at test
 * time, the service account's token, ca.crt and namespace files under a path prefix, and
 * KUBERNETES_SERVICE_HOST/PORT, as a pod has them. The token must be sent and the server
 * certificate verified against ca.crt.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KubeApiError } from '../../src/autoscaler/cluster-api.js';
import { loadAutoscalerConfig } from '../../src/autoscaler/config.js';
import { K8sScaleTarget, connectKube } from '../../src/autoscaler/k8s-client.js';
import { startAutoscaler } from '../../src/autoscaler/main.js';
import { silentLogger } from '../../src/shared/log.js';
import { FakeKubeApi } from '../helpers/fake-kube-api.js';

const TOKEN = 'in-cluster-service-account-token';
const SA_DIR = 'var/run/secrets/kubernetes.io/serviceaccount';
let dir: string;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A CA and a server certificate for 127.0.0.1 signed by it; plus a second, unrelated CA's server certificate. */
function makeCertificates(): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=roomcast-test-ca']);
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kubernetes']);
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'san.cnf']);
  openssl(['req', '-x509', ...ec, '-keyout', 'rogue.key', '-out', 'rogue.crt', '-days', '1', '-subj', '/CN=kubernetes', '-addext', 'subjectAltName=IP:127.0.0.1']);
}

beforeAll(() => {
  const which = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (which.status !== 0) throw new Error('openssl must be on the PATH for this test (Debian: apt-get install openssl)');
  dir = mkdtempSync(join(tmpdir(), 'roomcast-in-cluster-'));
  makeCertificates();
  mkdirSync(join(dir, SA_DIR), { recursive: true });
  writeFileSync(join(dir, SA_DIR, 'token'), TOKEN);
  writeFileSync(join(dir, SA_DIR, 'namespace'), 'roomcast-prod');
  writeFileSync(join(dir, SA_DIR, 'ca.crt'), readFileSync(join(dir, 'ca.crt')));
});

afterAll(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

describe('in-cluster configuration over TLS', () => {
  it('sends the service account token, verifies the server against ca.crt, and uses the pod\'s namespace', async () => {
    const fake = new FakeKubeApi('roomcast-prod', TOKEN);
    await fake.listen({ key: readFileSync(join(dir, 'server.key'), 'utf8'), cert: readFileSync(join(dir, 'server.crt'), 'utf8') });
    fake.addDeployment('roomcast-gateway', 2, { 'app.kubernetes.io/component': 'gateway' });
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '127.0.0.1');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', String(fake.port));
    const config = loadAutoscalerConfig({
      ROOMCAST_AUTOSCALER_HTTP_HOST: '127.0.0.1', ROOMCAST_AUTOSCALER_HTTP_PORT: '0', ROOMCAST_POD_NAME: 'autoscaler-0',
      ROOMCAST_SCHEDULE_FILE: join(dir, 'none.json'),
    }).config;
    const running = await startAutoscaler(config, { log: silentLogger, loops: false, inClusterPathPrefix: `${dir}/` });
    try {
      expect(running.namespace).toBe('roomcast-prod');
      expect(await running.leaseRound()).toBe(true);
      expect(await running.autoscaler.runOnce()).toMatchObject({ currentReplicas: 2, replicas: 2 });
      expect(fake.requests.length).toBeGreaterThanOrEqual(4);
      for (const request of fake.requests) expect(request.authorization).toBe(`Bearer ${TOKEN}`);
      expect(fake.requestsTo('POST', '/apis/coordination.k8s.io/v1/namespaces/roomcast-prod/leases')).toHaveLength(1);
      expect(fake.requestsTo('GET', '/apis/apps/v1/namespaces/roomcast-prod/deployments/roomcast-gateway/scale')).toHaveLength(1);
    } finally {
      await running.stop();
      await fake.close();
    }
  });

  it('refuses a server whose certificate another CA signed', async () => {
    const rogue = new FakeKubeApi('roomcast-prod', TOKEN);
    await rogue.listen({ key: readFileSync(join(dir, 'rogue.key'), 'utf8'), cert: readFileSync(join(dir, 'rogue.crt'), 'utf8') });
    rogue.addDeployment('roomcast-gateway', 2, { 'app.kubernetes.io/component': 'gateway' });
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '127.0.0.1');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', String(rogue.port));
    try {
      const connection = connectKube({ kubeconfig: null, inClusterPathPrefix: `${dir}/` });
      expect(connection.server).toBe(`https://127.0.0.1:${rogue.port}`);
      const error = await new K8sScaleTarget(connection, 'roomcast-prod', 'roomcast-gateway').readScale().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KubeApiError);
      expect((error as KubeApiError).status).toBe(0);
      expect(String((error as KubeApiError).message)).toMatch(/certificate|self.signed|unable to verify/i);
      // The TLS handshake failed, so no request (and no token) reached the server.
      expect(rogue.requests).toEqual([]);
    } finally {
      await rogue.close();
    }
  });
});
