/** Listening and closing for the room service's node:http servers (the API and the ops port). */
import type { Server } from 'node:http';

/** Listens on `host:port` and resolves with the bound port (`port` 0 picks a free one). */
export async function listenOn(server: Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : port;
}

/** Closes every connection, idle or not, and waits for the server to stop. */
export async function closeNow(server: Server | null): Promise<void> {
  if (!server) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
