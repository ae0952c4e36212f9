/**
 * The room service's operations port: /metrics, /healthz and /readyz for Prometheus and the kubelet,
 * apart from the public HTTP API so that metrics are never served to the internet.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from '../shared/log.js';
import type { MetricsRegistry } from '../shared/metrics.js';
import { closeNow, listenOn } from './node-http.js';

export interface OpsHttpDeps {
  metricsRegistry: MetricsRegistry;
  ready: () => boolean;
  log: Logger;
}

export class OpsHttp {
  private server: Server | null = null;

  constructor(private readonly deps: OpsHttpDeps) {}

  async listen(host: string, port: number): Promise<number> {
    const server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
      const path = req.url?.split('?')[0];
      if (req.method !== 'GET') { res.writeHead(405, { Allow: 'GET' }).end(); return; }
      if (path === '/healthz') { res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok'); return; }
      if (path === '/readyz') {
        const ready = this.deps.ready();
        res.writeHead(ready ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ready ? 'ok' : 'not ready');
        return;
      }
      if (path !== '/metrics') { res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found'); return; }
      this.deps.metricsRegistry.render().then(
        ({ contentType, body }) => res.writeHead(200, { 'Content-Type': contentType }).end(body),
        (error: unknown) => {
          this.deps.log.error('rendering metrics failed', { error });
          res.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics failed');
        },
      );
    });
    this.server = server;
    return listenOn(server, host, port);
  }

  close(): Promise<void> {
    return closeNow(this.server);
  }
}
