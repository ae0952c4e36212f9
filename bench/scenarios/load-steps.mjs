/**
 * The ramp shared by the throughput scenarios (hot-room, many-rooms): for one system under test,
 * connect the fleet, then for each offered rate send for warm-up + measurement seconds and measure
 * delivered deliveries/s, end-to-end latency, server CPU per delivery and drops; stop ramping once
 * delivery falls under 99 % of what was offered or p99 passes the bound.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { compareRecordings } from '../lib/frame-recording.mjs';
import { nowUs } from '../lib/clock.mjs';
import { merge, summarize } from '../lib/hdr-histogram.mjs';
import { setupPhases, startFleet } from '../lib/load-fleet.mjs';
import { overloadVerdict, sumAnswers } from '../lib/send-answers.mjs';
import { coreTimes, cpuTimesUs, runQueueWaitUs, rssBytes, tcpSocketMemory } from '../lib/proc-stats.mjs';
import { countSyscalls } from '../lib/syscall-count.mjs';
import { BENCH_SECRET, diffCounts, isLimitPeer, scrapeDrops } from '../lib/topology.mjs';

/** Delivered below this share of offered ends the ramp. */
export const MIN_DELIVERED_RATIO = 0.99;
/**
 * A step's load core is saturated when the cores the load runs on (load clients, and on a 2-core
 * machine the room service, NATS and Redis too) were busy at least this share of the window
 * (/proc/stat, whoever ran there) ...
 */
export const LOAD_CORE_BUSY_SATURATED = 0.95;
/**
 * ... or when the load processes were runnable but waiting for a core at least this share of the
 * window, summed over them (/proc/<pid>/schedstat): frames then sat in socket buffers because the
 * clients could not run, and the step measured the clients as much as the server.
 */
export const LOAD_WAIT_SATURATED = 0.25;
/** Roomcast's batching defaults (ROOMCAST_BATCH_WINDOW_MS, ROOMCAST_BATCH_MAX_MESSAGES in src/shared/config.ts). */
const DEFAULT_BATCH_WINDOW_MS = 50;
const DEFAULT_BATCH_MAX_MESSAGES = 200;
/** Roomcast's frames carrying at least this many messages on average were full windows: their rate gives the window. */
const FULL_BATCH_MESSAGES = 2;

/**
 * How the limit peer batches at one step, so that its frames are Roomcast's: the messages per frame
 * and frames per second per room Roomcast produced at that rate. Where Roomcast's frames held
 * several messages, its effective window is 1 / (its frames per second per room), whatever rule
 * chose it; where they held about one, the window is the configured one (each message is then its
 * own frame either way). At most the configured messages per frame.
 */
function limitBatching(options, referenceStep, rooms, replayed) {
  const configuredMs = Number(options.env?.ROOMCAST_BATCH_WINDOW_MS ?? DEFAULT_BATCH_WINDOW_MS);
  const maxMessages = Number(options.env?.ROOMCAST_BATCH_MAX_MESSAGES ?? DEFAULT_BATCH_MAX_MESSAGES);
  const connections = referenceStep?.openConnections;
  const framesPerRoomS = referenceStep?.framesPerS && connections ? referenceStep.framesPerS / connections : null;
  const roomcastMsgsPerFrame = referenceStep?.framesPerS ? referenceStep.deliveredPerS / referenceStep.framesPerS : null;
  const fromRoomcast = framesPerRoomS !== null && roomcastMsgsPerFrame >= FULL_BATCH_MESSAGES;
  return {
    // `replay`: Roomcast's recorded frames, byte for byte; `synthetic`: frames of the same layout.
    frames: replayed ? 'replay' : 'synthetic',
    windowMs: fromRoomcast ? 1000 / framesPerRoomS : configuredMs,
    maxMessages,
    windowFrom: fromRoomcast ? 'Roomcast\'s frames per second per room at this step' : 'the configured batch window',
    roomcastMsgsPerFrame,
    roomcastFramesPerRoomS: framesPerRoomS,
    rooms: rooms.count,
  };
}
/** Quiet time after each step so the next one starts without the last one's backlog. */
const DRAIN_MS = 1500;
/**
 * The product's bound on answering a room send (ack or error): "every send answered within 1 s".
 * A send still unanswered after the step's drain time (longer than this) was never answered in time.
 */
export const ANSWER_DEADLINE_MS = 1000;
/** --overload-step offers this multiple of the highest rate that stayed within bounds. */
export const OVERLOAD_FACTOR = 2;
const CONNECT_TIMEOUT_MS = 60000;

/** µs of CPU per message for each process and their total; null without messages. */
function cpuPerMessage(messages, cpuUsByProcess) {
  if (!(messages > 0)) return null;
  const each = Object.fromEntries(Object.entries(cpuUsByProcess).map(([name, us]) => [name, Math.round(us / messages)]));
  return { ...each, total: Math.round(Object.values(cpuUsByProcess).reduce((sum, us) => sum + us, 0) / messages) };
}

/** User and kernel CPU time of several processes, in microseconds; processes that are gone count 0. */
function cpuTimesOf(pids) {
  let userUs = 0; let systemUs = 0;
  for (const pid of pids) {
    try { const times = cpuTimesUs(pid); userUs += times.userUs; systemUs += times.systemUs; } catch { /* exited */ }
  }
  return { userUs, systemUs };
}

/** CPU time of several processes, in microseconds. */
function cpuOf(pids) {
  const { userUs, systemUs } = cpuTimesOf(pids);
  return userUs + systemUs;
}

function sumCounts(items, field) {
  const total = {};
  for (const item of items) for (const [key, value] of Object.entries(item[field] ?? {})) total[key] = (total[key] ?? 0) + value;
  return total;
}

/**
 * @param {object} run
 * @param {import('../lib/processes.mjs').ProcessGroup} run.group
 * @param {object} run.system       a started system (topology.mjs)
 * @param {Array} run.shares        fleet shares (see load-fleet.mjs)
 * @param {string[]} run.rooms      every room the fleet uses (for the final seq audit)
 * @param {number} run.recipientsPerMessage
 * @param {object} run.options      parsed flags
 * @param {(line: string) => void} run.progress
 */
export async function runLoadSteps({ group, system, shares, rooms, recipientsPerMessage, options, progress, mode = 'room', reference = null, driveRooms = null, chatGroup = null }) {
  const serverPids = (system.servers ?? [system.server]).map((child) => child.pid);
  const helperPids = system.helpers.map((child) => child.pid);
  for (const room of rooms) await system.createRoom(room);

  const fleet = await startFleet(group, {
    target: system, secret: BENCH_SECRET, shares, sampleCount: options.sample, cpu: options.loadCpu, client: options.loadClient, pollUs: options.loadPollUs,
    mode, ...(mode !== 'room' ? { uidPrefix: 'u' } : {}), ...(chatGroup ? { group: chatGroup } : {}), profileDir: options.loadProfileDir,
  });
  const limitPeer = typeof system.drive === 'function';
  const recordingFleet = fleet.client === 'native' && mode === 'room';
  // Roomcast's frames are recorded for the limit peer to replay; the limit peer's, to check them.
  const replaying = limitPeer && recordingFleet && reference?.frameRecording ? reference.frameRecording : null;
  const recordFrames = recordingFleet && ((system.name === 'roomcast' && options.targets.some(isLimitPeer)) || replaying !== null);
  if (replaying) {
    const loaded = await system.replay(replaying);
    progress(`  ${system.name}: replaying Roomcast's ${loaded.frames} recorded frames (${loaded.messages} messages, ${loaded.rooms} rooms)`);
  } else if (limitPeer) {
    progress(`  ${system.name}: synthetic frames of Roomcast's layout (${!recordingFleet ? 'the Node load clients record no frames' : 'no recording of Roomcast\'s frames in this run'})`);
  }
  const rssBefore = serverPids.reduce((sum, pid) => sum + rssBytes(pid), 0);
  const socketsBefore = tcpSocketMemory();
  const connectStarted = Date.now();
  const connected = await fleet.all('connect', { timeoutMs: CONNECT_TIMEOUT_MS });
  const joined = connected.reduce((sum, reply) => sum + reply.joined, 0);
  const connectFailures = sumCounts(connected, 'failures');
  const connectSeconds = (Date.now() - connectStarted) / 1000;
  const setup = { connectSeconds, connectionsPerS: Math.round(joined / connectSeconds), phases: setupPhases(connected) };
  // Let the gateway settle (viewer reports, session registry writes) before reading memory.
  await delay(1000);
  const rssAfter = serverPids.reduce((sum, pid) => sum + rssBytes(pid), 0);
  const socketsAfter = tcpSocketMemory();
  const memory = {
    connections: joined,
    serverRssBeforeBytes: rssBefore,
    serverRssAfterBytes: rssAfter,
    serverRssPerConnectionBytes: joined ? Math.round((rssAfter - rssBefore) / joined) : null,
    // Both ends of each loopback connection are on this machine: the kernel figure covers the pair.
    kernelTcpMemPerConnectionBytes: joined ? Math.round((socketsAfter.memBytes - socketsBefore.memBytes) / joined) : null,
    tcpSocketsInUse: socketsAfter.inuse,
  };
  progress(`  load clients: ${fleet.client === 'native' ? 'native (bench/native/)' : 'Node workers'}${fleet.clientNote ? ` (${fleet.clientNote})` : ''}`);
  progress(`  set-up phases (p50/p99 ms): ${Object.entries(setup.phases).map(([name, p]) => `${name.replace('Ms', '')} ${p.p50}/${p.p99}`).join(', ')}`);
  progress(`  ${system.name}: ${joined}/${fleet.total} connections joined in ${connectSeconds.toFixed(1)} s` +
    `${joined < fleet.total ? ` (failures: ${JSON.stringify(connectFailures)})` : ''}; server RSS +${fmtBytes(rssAfter - rssBefore)}` +
    ` (${fmtBytes(memory.serverRssPerConnectionBytes ?? 0)}/conn)`);
  if (joined === 0) {
    await fleet.stop();
    return { target: system.name, loadClient: fleet.client, loadClientNote: fleet.clientNote, memory, setup, connectFailures, steps: [], audit: null, failed: 'no connection joined' };
  }

  const recipients = recipientsPerMessage(joined, fleet);
  const steps = [];
  const dropsAtStart = await scrapeDrops(system.metricsUrl).catch(() => ({}));
  const recording = recordFrames ? await startRecording(fleet, system.name, rooms.length) : null;
  // The limit peer measures the steps Roomcast ran, all of them (its cost per delivery at each is
  // the reference for Roomcast's): it does not stop at its own bounds.
  const rates = limitPeer && reference?.steps?.length ? reference.steps.map((step) => step.rateMsgPerS) : options.rates;
  // Only Roomcast answers room sends: its senders time every answer (ack or error).
  const answered = system.protocol === 'roomcast' && mode === 'room' && !limitPeer;
  const stepAt = async (rate, index) => {
    const referenceStep = reference?.steps?.find((step) => step.rateMsgPerS === rate) ?? null;
    // The first step runs longer before its window opens (--settle-s): a process that just started
    // runs its JavaScript unoptimized for a while, and each limit peer settles as long as Roomcast did.
    const warmupMs = (options.warmupS + (index === 0 ? options.settleS : 0)) * 1000;
    const step = await runStep({ system, fleet, rate, warmupMs, recipients, joined, serverPids, helperPids, options, mode, referenceStep, driveRooms, replayStep: replaying ? index : undefined, answered });
    steps.push(step);
    progress(`  ${system.name.padEnd(10)} ${String(rate).padStart(6)} msg/s → offered ${fmtRate(step.offeredPerS)}` +
      ` delivered ${fmtRate(step.deliveredPerS)} (${(step.completeness * 100).toFixed(1)} % of sent arrived)` +
      ` p50 ${fmtMs(step.latency.p50Ms)} p99 ${fmtMs(step.latency.p99Ms)} max ${fmtMs(step.latency.maxMs)}` +
      `${step.storeLatency ? ` (stored: p50 ${fmtMs(step.storeLatency.p50Ms)} p99 ${fmtMs(step.storeLatency.p99Ms)})` : ''}` +
      ` | server ${(step.serverCpuUtil * 100).toFixed(0)} % cpu, ${step.serverCpuNsPerDelivery ?? '-'} ns/delivery (kernel ${step.serverKernelNsPerDelivery ?? '-'})` +
      (step.serverSyscalls ? `, ${step.serverSyscalls.writesPerDelivery?.toFixed(3) ?? '-'} writes/delivery` : '') +
      `${step.limitDrive ? ` (${step.limitDrive.frames === 'replay' ? 'Roomcast\'s frames replayed' : `window ${step.limitDrive.windowMs.toFixed(1)} ms`}: ${step.limitDrive.msgsPerFrame?.toFixed(1)} msgs/frame, Roomcast's ${step.limitDrive.roomcastMsgsPerFrame?.toFixed(1) ?? '–'})` : ''}` +
      `, waited ${(step.serverRunQueueWait * 100).toFixed(0)} % | load ${(step.loadCpuUtil * 100).toFixed(0)} % cpu, ${step.loadCpuNsPerFrame ?? '-'} ns/frame` +
      ` (receivers ${step.receiverCpuNsPerFrame ?? '-'}${step.receiverReadsPerFrame === undefined ? '' : `; ${step.receiverReadsPerFrame.toFixed(2)} recv/frame, ${step.receiverFramesPerWakeup.toFixed(1)} frames/wake-up`}), senders ${step.senderCpuNsPerSend ?? '-'} ns/send, waited ${(step.loadRunQueueWait * 100).toFixed(0)} %, load core busy ${(step.loadCoreBusy * 100).toFixed(0)} %${step.loadCoreSaturated ? ' SATURATED' : ''}` +
      `${system.helpers.length ? ` | ${Object.entries(step.helperCpuUtilByProcess).map(([name, util]) => `${name} ${(util * 100).toFixed(0)} %`).join(', ')}` : ''}` +
      `${step.cpuUsPerMessage ? ` | CPU µs/msg ${Object.entries(step.cpuUsPerMessage).map(([name, us]) => `${name} ${us}`).join(', ')}` : ''}${Object.keys(step.drops).length ? ` | drops ${JSON.stringify(step.drops)}` : ''}` +
      `${Object.keys(step.errors).length ? ` | errors ${JSON.stringify(step.errors)}` : ''}` +
      ` | sends: ${fmtAnswers(step.answers)}`);
    // A step whose load core saturated measured the clients too: it never counts as within bounds.
    step.withinBounds = step.completeness >= MIN_DELIVERED_RATIO && step.latency.p99Ms !== null && step.latency.p99Ms <= options.p99BoundMs && !step.loadCoreSaturated;
    return step;
  };
  for (const [index, rate] of rates.entries()) {
    const step = await stepAt(rate, index);
    if (!step.withinBounds && !limitPeer) {
      const why = step.completeness < MIN_DELIVERED_RATIO ? 'delivered < 99 % of offered'
        : step.latency.p99Ms === null || step.latency.p99Ms > options.p99BoundMs ? `p99 over ${options.p99BoundMs} ms` : 'the load core saturated';
      progress(`  ${system.name}: stopping the ramp (${why})`);
      break;
    }
  }
  if (options.overloadStep && answered) {
    // Past the ramp's bounds on purpose, whatever its p99: the service must still answer every send.
    const best = steps.filter((step) => step.withinBounds).reduce((max, step) => Math.max(max, step.rateMsgPerS), 0);
    const rate = OVERLOAD_FACTOR * (best || rates[0]);
    progress(`  ${system.name}: overload step at ${rate} msg/s (${OVERLOAD_FACTOR}× ${best ? `${best} msg/s, the highest rate within bounds` : `${rates[0]} msg/s: no rate stayed within bounds`})`);
    const step = await stepAt(rate, steps.length);
    step.overload = true;
  } else if (options.overloadStep && !limitPeer) {
    progress(`  ${system.name}: no overload step (${mode === 'room' ? 'it does not answer sends' : 'room sends only'})`);
  }

  // Every connection should have every seq after its join: compare with the rooms' final seqs.
  await delay(DRAIN_MS);
  let frameRecording = null;
  let frameIdentity;
  if (recording) {
    const recorded = await fleet.all('record-stop', {}, (worker) => worker.role !== 'sender');
    frameRecording = { files: recording.files, stepStartsUs: steps.map((step) => step.sendStartedUs), frames: recorded.reduce((sum, r) => sum + r.frames, 0) };
    if (replaying) {
      // Roomcast's recording stays for the next limit peer; the scenario removes it (removeRecording).
      frameIdentity = checkFrameIdentity(system.name, replaying, frameRecording, progress);
      removeRecording(frameRecording);
      frameRecording = null;
    }
  }
  const finalSeqs = {};
  if (mode === 'pm') {
    const audits = await fleet.all('audit', { finalSeqs: {} });
    const sum = (field) => audits.reduce((total, a) => total + (a[field] ?? 0), 0);
    const audit = {
      stored: sum('stored'), received: sum('received'), inboxSeqHoles: sum('missing'), duplicateSeqs: sum('extra'),
      unansweredSends: sum('unanswered'), notJoinedAtEnd: sum('notJoined'),
      serverDrops: diffCounts(dropsAtStart, await scrapeDrops(system.metricsUrl).catch(() => ({}))),
    };
    audit.missingDeliveries = Math.max(0, audit.stored - audit.received);
    audit.silentDrops = audit.missingDeliveries;
    progress(`  ${system.name}: audit: ${audit.stored} messages stored, ${audit.received} delivered, ${audit.inboxSeqHoles} inbox-seq holes,` +
      ` ${audit.duplicateSeqs} duplicates, ${audit.unansweredSends} sends never answered`);
    await fleet.stop();
    return { target: system.name, loadClient: fleet.client, loadClientNote: fleet.clientNote, memory, setup, connectFailures, recipientsPerMessage: recipients, steps, audit };
  }
  if (mode === 'gm') {
    // Every stored group message should reach every online member but its sender's connection.
    const audits = await fleet.all('audit', { finalSeqs: {} });
    const sum = (field) => audits.reduce((total, a) => total + (a[field] ?? 0), 0);
    const audit = { stored: sum('stored'), received: sum('received'), expectedDeliveries: sum('stored') * recipients, unansweredSends: sum('unanswered') };
    audit.missingDeliveries = Math.max(0, audit.expectedDeliveries - audit.received);
    progress(`  ${system.name}: audit: ${audit.stored} group messages stored, ${audit.received} of ${audit.expectedDeliveries} deliveries arrived,` +
      ` ${audit.unansweredSends} sends never answered`);
    await fleet.stop();
    return { target: system.name, loadClient: fleet.client, loadClientNote: fleet.clientNote, memory, setup, connectFailures, recipientsPerMessage: recipients, steps, audit };
  }
  let auditFailure = null;
  try {
    for (const room of rooms) finalSeqs[room] = await system.lastSeq(room);
  } catch (error) {
    auditFailure = `the rooms' final seqs could not be read: ${error.message}`;
  }
  if (auditFailure) {
    progress(`  ${system.name}: no audit: ${auditFailure}`);
    await fleet.stop();
    return { target: system.name, loadClient: fleet.client, loadClientNote: fleet.clientNote, memory, setup, connectFailures, recipientsPerMessage: recipients, steps, audit: null, failed: auditFailure };
  }
  const audits = await fleet.all('audit', { finalSeqs });
  const audit = {
    audited: audits.reduce((sum, a) => sum + a.audited, 0),
    notJoinedAtEnd: audits.reduce((sum, a) => sum + a.notJoined, 0),
    missingSeqs: audits.reduce((sum, a) => sum + a.missing, 0),
    extraSeqs: audits.reduce((sum, a) => sum + a.extra, 0),
    reportedGapSeqs: audits.reduce((sum, a) => sum + a.reportedGapSeqs, 0),
    sampledMissingSeqs: audits.reduce((sum, a) => sum + a.sampledMissing, 0),
    sampledDuplicateSeqs: audits.reduce((sum, a) => sum + a.sampledDuplicates, 0),
    serverDrops: diffCounts(dropsAtStart, await scrapeDrops(system.metricsUrl).catch(() => ({}))),
  };
  if (answered) {
    // Acked seqs the sending connection (a member of its room) never received, by the step that sent them.
    for (const [index, step] of steps.entries()) {
      step.answers.ackedButMissing = audits.reduce((sum, a) => sum + (a.ackedMissingByStep?.[index] ?? 0), 0);
    }
    audit.ackedButMissing = steps.reduce((sum, step) => sum + step.answers.ackedButMissing, 0);
  }
  const dropTotal = Object.values(audit.serverDrops).reduce((sum, n) => sum + n, 0);
  audit.silentDrops = Math.max(0, audit.missingSeqs - audit.reportedGapSeqs - dropTotal);
  progress(`  ${system.name}: audit over ${audit.audited} connections: ${audit.missingSeqs} missing seqs, ${audit.extraSeqs} extra,` +
    ` server drops ${JSON.stringify(audit.serverDrops)}${audit.notJoinedAtEnd ? `, ${audit.notJoinedAtEnd} connections lost` : ''}` +
    `${answered ? `; ${audit.ackedButMissing} acked but missing` : ''}`);
  await fleet.stop();
  const overloadStep = steps.find((step) => step.overload);
  const overload = overloadStep ? overloadVerdict(overloadStep) : null;
  if (overload) progress(`  ${system.name}: ${overload.line}`);
  const result = { target: system.name, loadClient: fleet.client, loadClientNote: fleet.clientNote, memory, setup, connectFailures, recipientsPerMessage: recipients, steps, audit, ...(overload ? { overload } : {}), ...(frameIdentity ? { frameIdentity } : {}) };
  // For the limit peer's run; temporary files, so not in the results.
  Object.defineProperty(result, 'frameRecording', { value: frameRecording, enumerable: false });
  return result;
}

/**
 * Has the receiving native clients record every `messages` frame of one connection per room: the
 * first `rooms` connections of the viewers (connection i is in room i mod rooms), the same
 * connections in every system's run.
 */
async function startRecording(fleet, name, rooms) {
  const receivers = fleet.workers.filter((worker) => worker.role !== 'sender');
  const first = Math.min(...receivers.map((worker) => worker.config.startIndex));
  const files = [];
  await Promise.all(receivers.map((worker) => {
    const path = `${tmpdir()}/roomcast-bench-frames-${process.pid}-${name}-${worker.name}.bin`;
    files.push(path);
    return worker.request('record', { path, first, count: rooms });
  }));
  return { files };
}

/** Deletes a run's recorded frames (temporary files); null: nothing recorded. */
export function removeRecording(recording) {
  for (const file of recording?.files ?? []) { try { unlinkSync(file); } catch { /* gone */ } }
}

/** Roomcast's frames against a limit peer's replay of them; a difference fails the run (run.mjs). */
function checkFrameIdentity(name, roomcast, limit, progress) {
  const identity = compareRecordings(roomcast.files, limit.files);
  if (identity.identical) {
    progress(`  ${name}: frames byte-identical to Roomcast's: ${identity.frames} frames (${identity.messages} messages, ${identity.bytes} bytes) in ${identity.rooms} rooms, only the stamps and ts moved`);
  } else {
    progress(`  ${name}: FRAMES DIFFER FROM ROOMCAST'S: ${identity.difference}`);
  }
  return identity;
}

async function runStep({ system, fleet, rate, warmupMs, recipients, joined, serverPids, helperPids, options, mode, referenceStep = null, driveRooms = null, replayStep, answered = false }) {
  const measureMs = options.stepS * 1000;
  const totalBefore = (await fleet.all('total', {})).reduce((sum, reply) => sum + reply.totalMessages, 0);
  // Scraped before the step starts: rendering /metrics costs the gateway CPU (prom-client lists
  // /proc/self/fd), which must not fall into the measured window.
  const dropsBefore = await scrapeDrops(system.metricsUrl).catch(() => ({}));
  // The limit peer publishes Roomcast's batches itself (see limitBatching).
  const limitDrive = typeof system.drive === 'function' ? limitBatching(options, referenceStep, driveRooms, replayStep !== undefined) : null;
  // Where a recording's steps begin (the limit peer replays each step from its own start).
  const sendStartedUs = nowUs();
  const sends = !limitDrive || system.takesSends
    ? Promise.all(fleet.senders().map((worker) => worker.request('send', {
      rate: rate / fleet.senders().length, durationMs: warmupMs + measureMs, textBytes: options.textBytes, answerDeadlineMs: ANSWER_DEADLINE_MS,
    })))
    : Promise.resolve([]);
  // What the clients receive: the limit peer's published frames, or what the senders' sends became.
  const sending = limitDrive
    ? system.drive({ rate, windowMs: limitDrive.windowMs, maxMessages: limitDrive.maxMessages, durationMs: warmupMs + measureMs, textBytes: options.textBytes, rooms: driveRooms, step: replayStep }).then((reply) => [reply])
    : sends;
  // Awaited below; a failure meanwhile must not count as unhandled.
  sends.catch(() => undefined);
  sending.catch(() => undefined);
  await delay(warmupMs);
  const fromUs = nowUs();
  const toUs = fromUs + measureMs * 1000;
  await fleet.all('measure-start', { fromUs, toUs });
  const serverTimesBefore = cpuTimesOf(serverPids);
  const waitPids = [...serverPids, ...fleet.pids];
  const waitBefore = waitPids.map(runQueueWaitUs);
  const helperCpuBefore = helperPids.map((pid) => cpuOf([pid]));
  // The load's cost from the kernel's accounting, the same for native and Node clients.
  const loadCpuBefore = cpuOf(fleet.pids);
  const receiverCpuBefore = cpuOf(fleet.receiverPids);
  const senderCpuBefore = cpuOf(fleet.senderPids);
  const coreBefore = coreTimes(options.loadCpu);
  const serverSyscallCount = countSyscalls(serverPids);
  const t0 = nowUs();
  await delay(measureMs);
  const ended = await fleet.all('measure-end', {});
  const elapsedUs = nowUs() - t0;
  const serverSyscalls = await serverSyscallCount.stop();
  const serverTimesAfter = cpuTimesOf(serverPids);
  const serverKernelUs = serverTimesAfter.systemUs - serverTimesBefore.systemUs;
  const serverCpuUs = serverTimesAfter.userUs - serverTimesBefore.userUs + serverKernelUs;
  const loadCpuUs = cpuOf(fleet.pids) - loadCpuBefore;
  const receiverCpuUs = cpuOf(fleet.receiverPids) - receiverCpuBefore;
  const senderCpuUs = cpuOf(fleet.senderPids) - senderCpuBefore;
  const coreAfter = coreTimes(options.loadCpu);
  const waitUs = waitPids.map((pid, i) => runQueueWaitUs(pid) - waitBefore[i]);
  const serverWaitUs = waitUs.slice(0, serverPids.length).reduce((sum, us) => sum + us, 0);
  const loadWaitUs = waitUs.slice(serverPids.length).reduce((sum, us) => sum + us, 0);
  const helperCpuEach = helperPids.map((pid, i) => cpuOf([pid]) - helperCpuBefore[i]);
  const helperCpuUs = helperCpuEach.reduce((sum, us) => sum + us, 0);
  // By process name: a Redis Cluster's primaries count together as redis-server.
  const helperCpuByName = {};
  system.helpers.forEach((child, i) => { helperCpuByName[child.benchName] = (helperCpuByName[child.benchName] ?? 0) + helperCpuEach[i]; });
  const sent = await sending;
  await sends;
  // Messages scheduled near the window's end are still in flight: give them time before the next step.
  await delay(DRAIN_MS);
  const dropsAfter = await scrapeDrops(system.metricsUrl).catch(() => ({}));
  const latencies = await fleet.all('latency', {});
  const answerReplies = answered ? await fleet.all('answers', {}, (worker) => worker.role === 'sender') : null;
  const receivedInStep = latencies.reduce((sum, reply) => sum + reply.totalMessages, 0) - totalBefore;

  const seconds = elapsedUs / 1e6;
  const sentTotal = sent.reduce((sum, reply) => sum + reply.sent, 0);
  const delivered = ended.reduce((sum, reply) => sum + reply.messages, 0);
  const frames = ended.reduce((sum, reply) => sum + reply.frames, 0);
  // The receiving processes' own replies (`all` answers in the fleet's order): a sender process also
  // receives its room's frames, and wakes for every send it makes.
  const receiverReplies = ended.filter((reply, i) => fleet.isReceiver(fleet.workers[i]));
  const receiverFrames = receiverReplies.reduce((sum, reply) => sum + reply.frames, 0);
  // Sends written in the measured window (the counters restart at measure-start).
  const sendsInWindow = ended.reduce((sum, reply) => sum + reply.sent, 0);
  const loadCoreBusy = coreAfter.total > coreBefore.total ? (coreAfter.busy - coreBefore.busy) / (coreAfter.total - coreBefore.total) : 0;
  const loadRunQueueWait = loadWaitUs / elapsedUs;
  const latency = summarize(merge(latencies.map((reply) => reply.histogram)));
  // Sampled receipts expected for the window's messages; fewer means lost or later than the drain time.
  // (Private messages are all timed: each has one recipient.)
  const expectedSamples = mode === 'pm' ? rate * (measureMs / 1000) : rate * (measureMs / 1000) * fleet.sampledCount * (recipients / joined);
  latency.coverage = expectedSamples > 0 ? Math.min(1, latency.count / expectedSamples) : null;
  const offeredPerS = rate * recipients;
  const deliveredPerS = delivered / seconds;
  return {
    rateMsgPerS: rate,
    sendStartedUs,
    /** The measured window on the harness's clock (CLOCK_MONOTONIC µs), to cut profiles to it. */
    windowUs: [fromUs, fromUs + elapsedUs],
    recipients,
    offeredPerS: Math.round(offeredPerS),
    deliveredPerS: Math.round(deliveredPerS),
    /** Arrivals in the measured window over what was offered in it. */
    deliveredRatio: offeredPerS > 0 ? deliveredPerS / offeredPerS : 0,
    /** Of every message sent in the step (warm-up included) to every recipient, the share that arrived by the end of the drain time. */
    completeness: sentTotal > 0 ? receivedInStep / (sentTotal * recipients) : 0,
    framesPerS: Math.round(frames / seconds),
    latency,
    // The native client also times each sampled message from the server's `ts` (when the room
    // service accepted it, ms since the epoch, same machine clock): the send path left out.
    ...(latencies.some((reply) => reply.serverTsHistogram) ? { latencyFromServerTs: summarize(merge(latencies.map((reply) => reply.serverTsHistogram))) } : {}),
    ...(mode !== 'room' ? { storeLatency: summarize(merge(latencies.map((reply) => reply.ackHistogram))) } : {}),
    serverCpuUtil: serverCpuUs / elapsedUs,
    /**
     * Server CPU per message that arrived in the window (its deliveries over its recipients), in µs, per
     * process (the gateway and the helpers: room service, NATS, Redis) and their sum.
     */
    cpuUsPerMessage: cpuPerMessage(delivered / recipients, { gateway: serverCpuUs, ...helperCpuByName }),
    serverCpuNsPerDelivery: delivered > 0 ? Math.round((serverCpuUs * 1000) / delivered) : null,
    /** Of that, the kernel's (system time: socket writes and reads, wake-ups); the rest ran in the process. */
    serverKernelNsPerDelivery: delivered > 0 ? Math.round((serverKernelUs * 1000) / delivered) : null,
    // The server's socket writes, reads and epoll waits in the window (perf stat; left out without it).
    ...(serverSyscalls ? { serverSyscalls: syscallRates(serverSyscalls, seconds, delivered) } : {}),
    helperCpuUtil: helperCpuUs / elapsedUs,
    /** The same, per process (room service, NATS, Redis): which of them fills the shared core. */
    helperCpuUtilByProcess: Object.fromEntries(Object.entries(helperCpuByName).map(([name, us]) => [name, us / elapsedUs])),
    /** Share of the window the server / load generators were runnable but waited for a core (others' processes). */
    serverRunQueueWait: serverWaitUs / elapsedUs,
    loadRunQueueWait,
    /** CPU of the load processes (/proc/<pid>/stat; senders included), as a share of one core. */
    loadCpuUtil: loadCpuUs / elapsedUs,
    /** That CPU per frame the clients received; and the receiving processes' alone per frame they received (no senders). */
    loadCpuNsPerFrame: frames > 0 ? Math.round((loadCpuUs * 1000) / frames) : null,
    receiverCpuNsPerFrame: receiverFrames > 0 ? Math.round((receiverCpuUs * 1000) / receiverFrames) : null,
    /** The sending processes' CPU (their own room's or inbox's messages received included) per send in the window. */
    senderCpuNsPerSend: sendsInWindow > 0 ? Math.round((senderCpuUs * 1000) / sendsInWindow) : null,
    // The native client's syscalls behind each frame: recv calls, and epoll_wait returns (each a
    // sleep and a wake-up when the client keeps up). The kernel floor is one recv per frame.
    ...nativeSyscalls(receiverReplies.filter((reply) => reply.reads !== undefined)),
    /** Share of the window the load cores were busy (/proc/stat: every process on them, the machine's other users too). */
    loadCoreBusy,
    loadCoreSaturated: loadCoreBusy >= LOAD_CORE_BUSY_SATURATED || loadRunQueueWait >= LOAD_WAIT_SATURATED,
    // msgs per frame the clients saw (messages / frames): beside Roomcast's at the same rate.
    ...(limitDrive ? { limitDrive: { ...limitDrive, msgsPerFrame: frames > 0 ? delivered / frames : null } } : {}),
    serverRssBytes: serverPids.reduce((sum, pid) => { try { return sum + rssBytes(pid); } catch { return sum; } }, 0),
    sent: sentTotal,
    senderMaxLagMs: Math.max(0, ...sent.map((reply) => reply.maxLagMs ?? 0)),
    acked: ended.reduce((sum, reply) => sum + reply.acked, 0),
    /** Every room send of the step (warm-up included) and how it was answered; null where sends get no answer. */
    answers: answerReplies ? sumAnswers(answerReplies, ANSWER_DEADLINE_MS) : null,
    errors: sumCounts(ended, 'errors'),
    closes: sumCounts(ended, 'closes'),
    drops: diffCounts(dropsBefore, dropsAfter),
    openConnections: ended.reduce((sum, reply) => sum + reply.open, 0),
  };
}

/** A step's answers in the console line; `–` for a system that does not answer sends. */
function fmtAnswers(a) {
  if (!a) return '–';
  const other = Object.keys(a.otherErrors).length ? `, other errors ${JSON.stringify(a.otherErrors)}` : '';
  return `${a.sends} made, ${a.acked} acked, ${a.overloaded} overloaded${other}, ${a.unansweredWithinDeadline} unanswered within ${a.deadlineMs / 1000} s` +
    ` (${a.neverAnswered} never), answer p50 ${fmtMs(a.answerTime.p50Ms)} p99 ${fmtMs(a.answerTime.p99Ms)} max ${fmtMs(a.answerTime.maxMs)}`;
}

/** A window's syscall counts per second, and the writes per delivery (the kernel floor is one per frame). */
function syscallRates({ writes, reads, polls }, seconds, delivered) {
  return {
    writesPerS: Math.round(writes / seconds),
    readsPerS: Math.round(reads / seconds),
    pollsPerS: Math.round(polls / seconds),
    writesPerDelivery: delivered > 0 ? writes / delivered : null,
  };
}

/** recv calls per frame and frames per epoll_wait return, over the native clients' replies. */
function nativeSyscalls(replies) {
  const frames = replies.reduce((sum, reply) => sum + reply.frames, 0);
  if (frames === 0) return {};
  return {
    receiverReadsPerFrame: replies.reduce((sum, reply) => sum + reply.reads, 0) / frames,
    receiverFramesPerWakeup: frames / Math.max(1, replies.reduce((sum, reply) => sum + reply.wakeups, 0)),
  };
}

export function fmtRate(perS) {
  if (perS >= 1e6) return `${(perS / 1e6).toFixed(2)} M/s`;
  if (perS >= 1e3) return `${(perS / 1e3).toFixed(1)} k/s`;
  return `${Math.round(perS)}/s`;
}

export function fmtMs(ms) {
  return ms === null || ms === undefined ? '-' : `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

export function fmtBytes(bytes) {
  const abs = Math.abs(bytes);
  if (abs >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  if (abs >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${Math.round(bytes)} B`;
}
