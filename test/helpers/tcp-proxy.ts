/**
 * A TCP proxy in front of a server, so a test can cut one client's connection (and keep it from
 * reconnecting) without stopping the server for everyone else.
 */
import { createConnection, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  /** Destroys every open connection and refuses new ones until restore(). */
  cut(): void;
  restore(): void;
  /** Stops reading what the server sends, as a client on a stalled network would; unstall() reads on. */
  stall(): void;
  unstall(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const open = new Set<Socket>();
  const downstream = new Map<Socket, Socket>();
  let refusing = false;

  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    for (const [socket, peer] of [[client, upstream], [upstream, client]] as const) {
      open.add(socket);
      // Without it, Nagle's algorithm would add delay to small request-reply writes.
      socket.setNoDelay(true);
      // A reset is how a cut or a vanished peer looks: tear the pair down ('close' follows).
      socket.on('error', () => socket.destroy());
      socket.on('close', () => {
        open.delete(socket);
        peer.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
    downstream.set(upstream, client);
    upstream.on('close', () => downstream.delete(upstream));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('the proxy has no TCP address');

  const cut = () => {
    refusing = true;
    for (const socket of open) socket.destroy();
  };
  return {
    port: address.port,
    cut,
    restore: () => {
      refusing = false;
    },
    stall: () => {
      for (const [upstream, client] of downstream) {
        upstream.unpipe(client);
        upstream.pause();
      }
    },
    unstall: () => {
      for (const [upstream, client] of downstream) upstream.pipe(client);
    },
    close: () => {
      cut();
      return new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
