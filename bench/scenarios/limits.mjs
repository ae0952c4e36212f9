/** How many client connections one server process can hold on this machine. */
import { hardNofile } from '../lib/processes.mjs';

/** File descriptors a server keeps besides its clients (listeners, NATS, Redis, epoll, logs). */
const SERVER_FD_MARGIN = 200;

export function connectionsAllowed() {
  return hardNofile - SERVER_FD_MARGIN;
}
