/**
 * A real nats-server per test file, with ports for clients and monitoring it picks itself (`-1`) and
 * names in its log, so no other process can take them between a choice and the bind (nats.js starts
 * one per test suite too). The monitoring endpoint lets tests see what the server sees, such as which
 * subscriptions exist.
 */
import type { ChildOutput } from './child-output.js';
import { startServer } from './server-process.js';

/** connz lists 1,024 connections unless told otherwise; tests have far fewer than this. */
const CONNZ_LIMIT = 10_000;
/** Generous: a busy machine may take seconds to start it. */
const READY_TIMEOUT_MS = 20_000;
/** nats-server's port value for "any free port". */
const ANY_PORT = '-1';

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
    args: ['-a', '127.0.0.1', '-p', ANY_PORT, '-m', ANY_PORT],
    ready: async (output) => {
      // It logs both ports before "Server is ready", and exits if it cannot bind.
      await output.waitForLine((line) => (line.includes('Server is ready') ? true : undefined), 'the line "Server is ready"', READY_TIMEOUT_MS);
      return [await loggedPort(output, 'Listening for client connections on'), await loggedPort(output, 'Starting http monitor on')];
    },
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

/** The port of the `host:port` a log line of nats-server gives after `announcement`. */
function loggedPort(output: ChildOutput, announcement: string): Promise<number> {
  const pattern = new RegExp(`${announcement} [^\\s]+:(\\d+)`);
  return output.waitForLine((line) => { const match = pattern.exec(line); return match ? Number(match[1]) : undefined; }, `a line "${announcement} …"`, READY_TIMEOUT_MS);
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
