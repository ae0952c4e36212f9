/**
 * A real nats-server per test file, on free ports for clients and monitoring (as nats.js starts one
 * for its own tests). The monitoring endpoint lets tests see what the server sees, such as which
 * subscriptions exist.
 */
import { startServer } from './server-process.js';

/** connz lists 1,024 connections unless told otherwise; tests have far fewer than this. */
const CONNZ_LIMIT = 10_000;

export interface NatsServerHandle {
  /** `nats://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** `http://127.0.0.1:PORT` of the monitoring endpoint. */
  monitorUrl: string;
  stop(): Promise<void>;
  /** How many subscriptions on exactly `subject` the server holds, over all connections. */
  subscriptionCount(subject: string): Promise<number>;
}

export async function startNats(): Promise<NatsServerHandle> {
  const { ports: [port, monitorPort], stop } = await startServer({
    binary: 'nats-server',
    install: 'apt-get install nats-server',
    reservedPorts: new Set([4222, 8222]),
    portCount: 2,
    args: ([clientPort, monitor]) => ['-a', '127.0.0.1', '-p', String(clientPort), '-m', String(monitor)],
    // The monitoring endpoint names the client port: a server that is not ours would name another.
    ready: async ([clientPort, monitor]) => (await getJson<{ port?: number }>(`http://127.0.0.1:${monitor}/varz`)).port === clientPort,
  });
  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  return {
    url: `nats://127.0.0.1:${port}`,
    port: port!,
    monitorUrl,
    stop,
    async subscriptionCount(subject) {
      const connz = await getJson<Connz>(`${monitorUrl}/connz?subs=1&limit=${CONNZ_LIMIT}`);
      if (connz.num_connections < connz.total) throw new Error(`connz listed ${connz.num_connections} of ${connz.total} connections`);
      let count = 0;
      for (const connection of connz.connections) {
        for (const subscribed of connection.subscriptions_list ?? []) if (subscribed === subject) count++;
      }
      return count;
    },
  };
}

interface Connz {
  total: number;
  num_connections: number;
  connections: Array<{ subscriptions_list?: string[] }>;
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return (await response.json()) as T;
}
