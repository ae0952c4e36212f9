/**
 * What a wake-up costs a Node process on this machine, against what a socket write costs: the unit
 * behind the CPU per message of every Roomcast process at moderate rates (bench/README.md, "What a
 * unit of work costs here"). Run it pinned, alone: `taskset -c 1 node bench/wake-cost.mjs`.
 *
 * 1. A timer loop (sleep 1 ms, wake, sleep again): CPU charged per wake-up.
 * 2. 100-byte writes to a loopback TCP socket read by a child process: back to back, and one per 1 ms.
 */
import { fork } from 'node:child_process';
import net from 'node:net';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function perOperation(count, work) {
  return async () => {
    const before = process.cpuUsage();
    await work();
    const used = process.cpuUsage(before);
    return { userUs: used.user / count, systemUs: used.system / count };
  };
}

function show(label, { userUs, systemUs }) {
  console.log(`${label.padEnd(34)} ${(userUs + systemUs).toFixed(1).padStart(7)} µs of CPU each (user ${userUs.toFixed(1)}, kernel ${systemUs.toFixed(1)})`);
}

if (process.argv[2] === 'reader') {
  const server = net.createServer((socket) => socket.on('data', () => undefined));
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
} else {
  const WAKES = 2000;
  show('wake-up (1 ms timer)', await perOperation(WAKES, async () => { for (let i = 0; i < WAKES; i++) await sleep(1); })());

  const reader = fork(new URL(import.meta.url).pathname, ['reader']);
  const port = await new Promise((resolve) => reader.once('message', resolve));
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const payload = Buffer.alloc(100, 1);
  const BURST = 20_000;
  show('socket write, back to back', await perOperation(BURST, async () => {
    for (let i = 0; i < BURST; i++) {
      socket.write(payload);
      if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  })());
  show('socket write, one per 1 ms', await perOperation(WAKES, async () => {
    for (let i = 0; i < WAKES; i++) {
      socket.write(payload);
      await sleep(1);
    }
  })());
  socket.destroy();
  reader.kill();
}
