/**
 * Writes a run's results: bench/results/<date>-<scenario>.json (everything measured), SVG charts of
 * throughput and p99 against offered load (every system on the same axes), and
 * <date>-summary.md, rebuilt from all of that date's JSON files so one page covers the day's runs.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { lineChart } from './svg-chart.mjs';
import { isLimitPeer } from './topology.mjs';

/**
 * The hot-room targets (see bench/README.md): deliveries per second within a p99 bound, by room size
 * (a room of 10,000 viewers or more needs a longer batch window), and ratios to the peers' best.
 */
export const HOT_ROOM_TARGETS = {
  small: { deliveriesPerS: 3_000_000, p99Ms: 100 },
  large: { viewersFrom: 10_000, deliveriesPerS: 2_000_000, p99Ms: 250 },
  vsSocketIo: 20,
  vsWs: 10,
};
/** Server RSS per idle connection, over all of them, at 19,800 connections. */
export const IDLE_TARGET_BYTES_PER_CONNECTION = 2.5 * 1024;
/** Load core busier than this in a step (results written before steps carried `loadCoreSaturated`). */
const LOAD_CORE_SATURATED = 0.9;
/** Load generators waiting for a core this long (summed over them, share of the window): the core was oversubscribed. */
const LOAD_WAIT_CONTENDED = 0.5;

/** Whether a step's load core saturated (load-steps.mjs defines the rule; older results: the old rule). */
export function stepSaturated(step) {
  if (step.loadCoreSaturated !== undefined) return step.loadCoreSaturated;
  return step.loadCpuUtil + step.helperCpuUtil >= LOAD_CORE_SATURATED || (step.loadRunQueueWait ?? 0) >= LOAD_WAIT_CONTENDED;
}

/**
 * Roomcast's gateway CPU per delivery beside the limit peer's at each rate both ran: the
 * efficiency ratio (1 = as cheap as a bare uWS.js publish of the same batches). With `limit-sends`
 * in the run, also beside that peer's (the same frames, and the senders' sends taken and acked).
 */
export function efficiency(result) {
  const ours = result.targets?.find((target) => target.target === 'roomcast');
  const limit = result.targets?.find((target) => target.target === 'limit');
  const limitSends = result.targets?.find((target) => target.target === 'limit-sends');
  if (!ours?.steps?.length || !limit?.steps?.length) return null;
  const ratio = (ns, peerNs) => (ns && peerNs ? ns / peerNs : null);
  return ours.steps.map((step) => {
    const peer = limit.steps.find((other) => other.rateMsgPerS === step.rateMsgPerS);
    const withSends = limitSends?.steps?.find((other) => other.rateMsgPerS === step.rateMsgPerS);
    return {
      rateMsgPerS: step.rateMsgPerS,
      roomcastNsPerDelivery: step.serverCpuNsPerDelivery,
      limitNsPerDelivery: peer?.serverCpuNsPerDelivery ?? null,
      ratio: ratio(step.serverCpuNsPerDelivery, peer?.serverCpuNsPerDelivery),
      ...(withSends ? {
        limitSendsNsPerDelivery: withSends.serverCpuNsPerDelivery,
        ratioToLimitSends: ratio(step.serverCpuNsPerDelivery, withSends.serverCpuNsPerDelivery),
        limitSendsWritesPerDelivery: withSends.serverSyscalls?.writesPerDelivery ?? null,
        limitSendsKernelNsPerDelivery: withSends.serverKernelNsPerDelivery ?? null,
      } : {}),
      // The kernel's share of each (socket writes and reads, wake-ups): what the process's own work is not.
      roomcastKernelNsPerDelivery: step.serverKernelNsPerDelivery ?? null,
      limitKernelNsPerDelivery: peer?.serverKernelNsPerDelivery ?? null,
      // Socket writes per delivery (perf stat; null without it): a cost that does not move with the machine.
      roomcastWritesPerDelivery: step.serverSyscalls?.writesPerDelivery ?? null,
      limitWritesPerDelivery: peer?.serverSyscalls?.writesPerDelivery ?? null,
      limitMsgsPerFrame: peer?.limitDrive?.msgsPerFrame ?? null,
      roomcastMsgsPerFrame: step.framesPerS ? step.deliveredPerS / step.framesPerS : null,
      // Replayed frames keep Roomcast's timing: no window of the limit peer's own.
      limitWindowMs: peer?.limitDrive?.frames === 'replay' ? null : peer?.limitDrive?.windowMs ?? null,
      roomcastWithinBounds: step.withinBounds,
      saturated: stepSaturated(step) || (peer ? stepSaturated(peer) : false) || (withSends ? stepSaturated(withSends) : false),
    };
  }).filter((row) => row.limitNsPerDelivery !== null);
}

/** An efficiency ratio as the reports print it; `–` where there is none. */
export function fmtRatio(ratio) {
  return ratio === null || ratio === undefined ? '–' : `${ratio.toFixed(2)}×`;
}

/** The highest delivered rate among steps within bounds (delivered ≥ 99 % of offered, p99 under the bound). */
export function bestSustained(target) {
  const good = (target.steps ?? []).filter((step) => step.withinBounds);
  return good.reduce((best, step) => (!best || step.deliveredPerS > best.deliveredPerS ? step : best), null);
}

function bestAny(target) {
  return (target.steps ?? []).reduce((best, step) => (!best || step.deliveredPerS > best.deliveredPerS ? step : best), null);
}

/**
 * Roomcast's best delivered rate within bounds over each rival's (the limit peers are compared per
 * step instead: efficiency); null when Roomcast sustained no step. A rival that sustained none gets null.
 */
export function sustainedRatios(result) {
  const ours = result.targets?.find((target) => target.target === 'roomcast');
  const ourBest = ours ? bestSustained(ours) : null;
  if (!ourBest) return null;
  const ratios = {};
  for (const target of result.targets) {
    if (target.target === 'roomcast' || isLimitPeer(target.target)) continue;
    const theirs = bestSustained(target)?.deliveredPerS ?? 0;
    ratios[`roomcast/${target.target}`] = theirs > 0 ? ourBest.deliveredPerS / theirs : null;
  }
  return ratios;
}

/** Every rate that any of the lists of steps (or rows) has, ascending. */
function ratesIn(lists) {
  return [...new Set(lists.flat().map((row) => row.rateMsgPerS))].sort((a, b) => a - b);
}

/** The median of some numbers and their range, nulls left out; null when none is left. */
export function spread(values) {
  const sorted = values.filter((value) => value !== null && value !== undefined).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, min: sorted[0], max: sorted.at(-1) };
}

/**
 * Each step's efficiency ratios over the rounds of a `--rounds` run: every round's ratio (null where
 * that round did not reach the rate), their median and range, and how many rounds had the step's
 * load core saturated.
 */
export function efficiencyOverRounds(rounds) {
  const perRound = rounds.map((round) => round.efficiency ?? []);
  const rates = ratesIn(perRound);
  if (rates.length === 0) return null;
  return rates.map((rateMsgPerS) => {
    const rows = perRound.map((rows) => rows.find((row) => row.rateMsgPerS === rateMsgPerS) ?? null);
    const ratios = rows.map((row) => row?.ratio ?? null);
    const toLimitSends = rows.some((row) => row?.ratioToLimitSends !== undefined) ? rows.map((row) => row?.ratioToLimitSends ?? null) : null;
    // What the sends alone cost: the limit peer + sends over the limit peer, on the same frames.
    const sendsOverLimit = toLimitSends ? rows.map((row) => (row?.limitSendsNsPerDelivery && row.limitNsPerDelivery ? row.limitSendsNsPerDelivery / row.limitNsPerDelivery : null)) : null;
    return {
      rateMsgPerS,
      ratios,
      ratio: spread(ratios),
      ...(toLimitSends ? { ratiosToLimitSends: toLimitSends, ratioToLimitSends: spread(toLimitSends), limitSendsOverLimit: spread(sendsOverLimit) } : {}),
      saturatedRounds: rows.filter((row) => row?.saturated).length,
    };
  });
}

/** The write path of a room message: the room service's, NATS's and Redis's CPU per message; null without them. */
export function writePathUs(cpuUsPerMessage) {
  const parts = ['room-service', 'nats-server', 'redis-server'].map((name) => cpuUsPerMessage?.[name]);
  return parts.some((part) => part === undefined) ? null : parts.reduce((sum, part) => sum + part, 0);
}

/** What a round keeps of Roomcast's steps besides the ratios: p99, whether within bounds, the write path. */
export function roomcastStepsOfRound(result) {
  const ours = result.targets?.find((target) => target.target === 'roomcast');
  return (ours?.steps ?? []).map((step) => ({
    rateMsgPerS: step.rateMsgPerS,
    p99Ms: step.latency?.p99Ms ?? null,
    withinBounds: step.withinBounds,
    writePathUs: writePathUs(step.cpuUsPerMessage),
  }));
}

/** Roomcast's sustained-rate ratio to each rival over the rounds: each round's, their median and range. */
export function ratiosOverRounds(rounds) {
  const names = [...new Set(rounds.flatMap((round) => Object.keys(round.ratios ?? {})))];
  return Object.fromEntries(names.map((name) => {
    const each = rounds.map((round) => round.ratios?.[name] ?? null);
    return [name, { each, ...spread(each) }];
  }));
}

export function addComparisons(result) {
  if (result.rounds) {
    result.efficiencyOverRounds = efficiencyOverRounds(result.rounds);
    result.ratiosOverRounds = ratiosOverRounds(result.rounds);
  }
  if (!result.targets?.some((target) => target.steps?.length)) return;
  const ours = result.targets.find((target) => target.target === 'roomcast');
  const ourBest = ours ? bestSustained(ours) : null;
  result.best = Object.fromEntries(result.targets.map((target) => {
    const sustained = bestSustained(target);
    const any = bestAny(target);
    return [target.target, {
      sustainedDeliveriesPerS: sustained?.deliveredPerS ?? 0,
      sustainedAtRateMsgPerS: sustained?.rateMsgPerS ?? null,
      sustainedP99Ms: sustained?.latency.p99Ms ?? null,
      highestDeliveredPerS: any?.deliveredPerS ?? 0,
      // A ramp that never left its bounds did not find the system's limit: its best is a lower bound.
      limitReached: (target.steps ?? []).some((step) => !step.withinBounds),
      // The load core (load generators + room service, NATS, Redis) busy near 100 %, or its processes
      // waiting for it: the clients, not the server, may be the limit.
      loadCoreSaturated: (target.steps ?? []).some(stepSaturated),
    }];
  }));
  result.efficiency = efficiency(result);
  if (!ourBest) return;
  result.ratios = sustainedRatios(result);
  if (result.scenario === 'hot-room') {
    const ratio = (name) => result.ratios[`roomcast/${name}`];
    // A peer that sustained no step at all is beaten by any sustained step of ours (the ratio is unbounded).
    const versus = (name, goal) => {
      if (ratio(name) === undefined) return null;
      if (ratio(name) === null) return { target: goal, measured: 'peer sustained no step', met: ourBest.deliveredPerS > 0 };
      return { target: goal, measured: ratio(name), met: ratio(name) >= goal };
    };
    const silent = ours.audit?.silentDrops ?? null;
    // The throughput target has its own latency bound, whatever --p99-bound-ms the ramp used; a
    // step whose load core saturated never counts.
    const goal = (result.viewers ?? 0) >= HOT_ROOM_TARGETS.large.viewersFrom ? HOT_ROOM_TARGETS.large : HOT_ROOM_TARGETS.small;
    const atTargetLatency = ours.steps
      .filter((step) => step.completeness >= 0.99 && step.latency.p99Ms !== null && step.latency.p99Ms <= goal.p99Ms && !stepSaturated(step))
      .reduce((best, step) => Math.max(best, step.deliveredPerS), 0);
    result.targetsMet = {
      deliveriesPerS: { target: goal.deliveriesPerS, measured: atTargetLatency, met: atTargetLatency >= goal.deliveriesPerS, note: `best delivered/s with p99 ≤ ${goal.p99Ms} ms, ≥ 99 % arrived and the load core not saturated` },
      vsSocketIo: versus('socketio', HOT_ROOM_TARGETS.vsSocketIo),
      vsWs: versus('ws', HOT_ROOM_TARGETS.vsWs),
      noSilentDrops: { target: 0, measured: silent, met: silent === 0 },
    };
  }
}

const rate = (perS) => (perS >= 1e6 ? `${(perS / 1e6).toFixed(2)} M` : perS >= 1e3 ? `${(perS / 1e3).toFixed(1)} k` : `${Math.round(perS)}`);
const ms = (value) => (value === null || value === undefined ? '–' : value < 10 ? value.toFixed(1) : String(Math.round(value)));
const pct = (value) => `${(value * 100).toFixed(0)} %`;
const kib = (bytes) => (bytes === null || bytes === undefined ? '–' : `${(bytes / 1024).toFixed(2)} KiB`);

/** "gateway + room service + NATS + Redis = total" in µs, from a step's cpuUsPerMessage. */
function cpuPerMessageCell(perMessage) {
  if (!perMessage) return '–';
  const { total, ...each } = perMessage;
  return `${Object.values(each).join(' + ')} = **${total}**`;
}

function stepsTable(target) {
  const lines = [
    `**${target.target}** — ${target.loadClient === 'native' ? 'native load client' : target.loadClient === 'node' ? `Node load workers${target.loadClientNote ? ` (${target.loadClientNote})` : ''}` : 'load client not recorded'}; ${target.memory.connections} connections; server RSS ${kib(target.memory.serverRssPerConnectionBytes)}/connection,` +
      ` kernel TCP buffers ${kib(target.memory.kernelTcpMemPerConnectionBytes)}/connection (both ends)` +
      (target.setup ? `; connected and joined at ${target.setup.connectionsPerS}/s (p50/p99 ms: ${Object.entries(target.setup.phases).map(([name, p]) => `${name.replace('Ms', '')} ${p.p50}/${p.p99}`).join(', ')})` : ''),
    '',
    '| msg/s | recipients | offered deliveries/s | delivered/s | arrived | p50 ms | p99 ms | p99.9 ms | max ms | server CPU | server ns/delivery | load CPU | load ns/frame (receivers) | senders ns/send | load core busy | CPU waited (server / load) | drops | errors |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|',
  ];
  const stored = target.steps.some((step) => step.storeLatency);
  if (stored) {
    lines[2] = lines[2].replace('| server CPU |', '| stored p50 / p99 ms | server CPU |');
    lines[3] = `|${'---:|'.repeat(lines[2].split('|').length - 2)}`;
  }
  const perMessage = target.steps.some((step) => step.cpuUsPerMessage);
  if (perMessage) {
    lines[2] = lines[2].replace('| server ns/delivery |', '| server ns/delivery | server CPU µs/msg (gateway + service + NATS + Redis = total) |');
    lines[3] = `|${'---:|'.repeat(lines[2].split('|').length - 2)}`;
  }
  for (const step of target.steps) {
    const perMessageCell = perMessage ? ` ${cpuPerMessageCell(step.cpuUsPerMessage)} |` : '';
    const storedCell = stored ? ` ${ms(step.storeLatency?.p50Ms)} / ${ms(step.storeLatency?.p99Ms)} |` : '';
    lines.push(`| ${step.rateMsgPerS} | ${step.recipients} | ${rate(step.offeredPerS)} | ${rate(step.deliveredPerS)} | ${(step.completeness * 100).toFixed(1)} %${step.withinBounds ? '' : ' ✗'} |` +
      ` ${ms(step.latency.p50Ms)} | ${ms(step.latency.p99Ms)} | ${ms(step.latency.p999Ms)} | ${ms(step.latency.maxMs)} |${storedCell}` +
      ` ${pct(step.serverCpuUtil)} | ${step.serverCpuNsPerDelivery ?? '–'} |${perMessageCell} ${pct(step.loadCpuUtil)} | ${step.loadCpuNsPerFrame ?? '–'} (${step.receiverCpuNsPerFrame ?? '–'}) | ${step.senderCpuNsPerSend ?? '–'} |` +
      ` ${step.loadCoreBusy === undefined ? '–' : pct(step.loadCoreBusy)}${stepSaturated(step) ? ' **saturated**' : ''} | ${pct(step.serverRunQueueWait ?? 0)} / ${pct(step.loadRunQueueWait ?? 0)} |` +
      ` ${Object.entries(step.drops).map(([k, v]) => `${k}: ${v}`).join(', ') || '0'} | ${Object.entries(step.errors).map(([k, v]) => `${k}: ${v}`).join(', ') || '0'} |`);
  }
  // Private chat's sends are timed to `sent` (the stored column), not to a room send's answer.
  if (!stored) lines.push('', ...answersTable(target));
  if (target.frameIdentity) {
    const f = target.frameIdentity;
    lines.push('', f.identical
      ? `Frames: Roomcast's own, replayed byte for byte (${f.frames} frames, ${f.messages} messages, ${f.bytes} bytes in ${f.rooms} rooms compared; only the stamps and \`ts\` moved).`
      : `Frames: **not identical to Roomcast's**: ${f.difference}.`);
  }
  if (target.audit && target.audit.stored !== undefined) {
    const a = target.audit;
    lines.push('', `Audit after the ramp: ${a.stored} private messages stored (answered \`sent\`), ${a.received} delivered to the peer,` +
      ` ${a.missingDeliveries} missing, ${a.inboxSeqHoles} inbox-seq holes, ${a.duplicateSeqs} duplicates, ${a.unansweredSends} sends never answered` +
      `${a.notJoinedAtEnd ? `; ${a.notJoinedAtEnd} connections were gone at the end` : ''}.`);
  } else if (target.audit) {
    const a = target.audit;
    lines.push('', `Audit after the ramp (${a.audited} connections against the rooms' final seqs): ${a.missingSeqs} missing seqs` +
      ` (${a.reportedGapSeqs} reported as gaps, server drops ${JSON.stringify(a.serverDrops)}, silent ${a.silentDrops}),` +
      ` ${a.extraSeqs} extra; sampled connections: ${a.sampledMissingSeqs} missing, ${a.sampledDuplicateSeqs} duplicates` +
      `${a.notJoinedAtEnd ? `; ${a.notJoinedAtEnd} connections were no longer joined at the end` : ''}` +
      `${a.ackedButMissing === undefined ? '' : `; ${a.ackedButMissing} acked but missing (must be 0)`}.`);
  }
  if (target.overload) lines.push('', `**${target.overload.pass ? 'PASS' : 'FAIL'}**: ${target.overload.line}.`);
  return lines;
}

/**
 * How every room send of each step was answered (Roomcast's senders time each one); `–` for the
 * peers, which do not answer sends, and for results written before steps carried answers.
 */
function answersTable(target) {
  const answered = target.steps.some((step) => step.answers);
  const lines = [
    answered
      ? `Sends of **${target.target}** (warm-up included; answered = its \`ack\` or \`error\`, timed from the frame's write on the sender's monotonic clock):`
      : `Sends of **${target.target}**: – (${target.target === 'roomcast' ? 'not measured in this result' : 'it does not answer sends'})`, '',
    '| msg/s | sends | acked | overloaded | other errors | unanswered within 1 s (never) | acked but missing | answer p50 ms | p99 ms | max ms |',
    '|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|',
  ];
  for (const step of target.steps) {
    const a = step.answers;
    const label = `${step.rateMsgPerS}${step.overload ? ' (overload)' : ''}`;
    if (!a) { lines.push(`| ${label} | – | – | – | – | – | – | – | – | – |`); continue; }
    lines.push(`| ${label} | ${a.sends} | ${a.acked} | ${a.overloaded} | ${Object.entries(a.otherErrors).map(([k, v]) => `${k}: ${v}`).join(', ') || '0'} |` +
      ` ${a.unansweredWithinDeadline} (${a.neverAnswered}) | ${a.ackedButMissing ?? '–'} | ${ms(a.answerTime.p50Ms)} | ${ms(a.answerTime.p99Ms)} | ${ms(a.answerTime.maxMs)} |`);
  }
  return lines;
}

function markdownFor(result) {
  const lines = [`## ${result.scenario}${result.tag ? ` (${result.tag})` : ''}, ${result.startedAt}`, '', `\`${result.command}\``, ''];
  const env = result.environment;
  lines.push(`Machine: ${env.nproc} × ${env.cpuModel}, ${env.memoryGiB} GiB, Linux ${env.kernel}, Node ${env.node}; ${env.pinning}${env.loadNice ? `, load at nice ${env.loadNice}` : ""}; open-file limit ${env.openFileLimit}.`, '');
  if (result.viewers !== undefined) {
    lines.push(`Room: ${result.viewers} viewers + ${result.senders} senders = ${result.viewers + result.senders} connections${result.cappedByOpenFileLimit ? `, the most one server process may hold here (open-file limit ${env.openFileLimit} − ${env.openFileLimit - result.connectionsAllowed} kept for the server's own files)` : ''}.`, '');
  }
  if (result.options.redis === 'cluster') lines.push('Roomcast on a 3-primary Redis Cluster (three redis-servers on the load core; their CPU summed as redis-server).', '');
  if (Object.keys(result.options.env ?? {}).length) lines.push(`Roomcast settings besides the load limits: ${Object.entries(result.options.env).map(([k, v]) => `\`${k}=${v}\``).join(', ')}.`, '');
  if (result.best) {
    lines.push('| system | best delivered/s within bounds | at msg/s | its p99 ms | highest delivered/s | limit reached | load core saturated |', '|---|---:|---:|---:|---:|---|---|');
    for (const [name, best] of Object.entries(result.best)) {
      lines.push(`| ${name} | ${rate(best.sustainedDeliveriesPerS)} | ${best.sustainedAtRateMsgPerS ?? '–'} | ${ms(best.sustainedP99Ms)} | ${rate(best.highestDeliveredPerS)} |` +
        ` ${best.limitReached ? 'yes' : 'no: a lower bound (add higher --rates)'} | ${best.loadCoreSaturated ? 'yes: the clients may be the limit' : 'no'} |`);
    }
    lines.push('');
  }
  if (result.efficiency?.length) {
    const replayed = result.targets?.find((target) => target.target === 'limit')?.frameIdentity?.identical;
    const sendsColumns = result.efficiency.some((row) => row.limitSendsNsPerDelivery !== undefined);
    const writesColumn = result.efficiency.some((row) => row.roomcastWritesPerDelivery != null);
    const kernelColumn = result.efficiency.some((row) => row.roomcastKernelNsPerDelivery != null);
    lines.push(`Efficiency: Roomcast's gateway CPU per delivery over the limit peer's (bare uWS.js publishing ${replayed ? 'Roomcast\'s own frames of that step, byte for byte, at the times they reached Roomcast\'s viewers' : 'batches like Roomcast\'s at that step: its batch window, message size and messages per frame'}, to the same viewers):`, '',
      `| msg/s | Roomcast ns/delivery | limit peer ns/delivery | ratio |${sendsColumns ? ' limit peer + sends ns/delivery | ratio to it |' : ''}${writesColumn ? ` socket writes/delivery (Roomcast / limit${sendsColumns ? ' / + sends' : ''}) |` : ''}${kernelColumn ? ` of the ns/delivery, in the kernel (Roomcast / limit${sendsColumns ? ' / + sends' : ''}) |` : ''} msgs/frame (Roomcast / limit) | limit window ms | note |`,
      `|---:|---:|---:|---:|${sendsColumns ? '---:|---:|' : ''}${writesColumn ? '---:|' : ''}${kernelColumn ? '---:|' : ''}---:|---:|---|`);
    const writes = (perDelivery) => perDelivery?.toFixed(3) ?? '–';
    for (const row of result.efficiency) {
      lines.push(`| ${row.rateMsgPerS} | ${row.roomcastNsPerDelivery ?? '–'} | ${row.limitNsPerDelivery} | ${fmtRatio(row.ratio)} |` +
        `${sendsColumns ? ` ${row.limitSendsNsPerDelivery ?? '–'} | ${fmtRatio(row.ratioToLimitSends)} |` : ''}` +
        `${writesColumn ? ` ${writes(row.roomcastWritesPerDelivery)} / ${writes(row.limitWritesPerDelivery)}${sendsColumns ? ` / ${writes(row.limitSendsWritesPerDelivery)}` : ''} |` : ''}` +
        `${kernelColumn ? ` ${row.roomcastKernelNsPerDelivery ?? '–'} / ${row.limitKernelNsPerDelivery ?? '–'}${sendsColumns ? ` / ${row.limitSendsKernelNsPerDelivery ?? '–'}` : ''} |` : ''}` +
        ` ${row.roomcastMsgsPerFrame?.toFixed(1) ?? '–'} / ${row.limitMsgsPerFrame?.toFixed(1) ?? '–'} | ${row.limitWindowMs?.toFixed(1) ?? '–'} | ${[row.roomcastWithinBounds ? '' : 'Roomcast out of bounds', row.saturated ? 'load core saturated' : ''].filter(Boolean).join('; ')} |`);
    }
    lines.push('');
    if (sendsColumns) {
      lines.push('The limit peer + sends (`limit-sends`) publishes the same frames and also takes the senders\' sends, answering each at once with an `ack`: the least a server spends on the same traffic both ways.', '');
    }
  }
  if (result.efficiencyOverRounds?.length) lines.push(...roundsTable(result), '');
  if (result.rounds?.some((round) => round.roomcastSteps?.length)) lines.push(...roomcastRoundsTable(result.rounds), '');
  if (result.ratios && Object.keys(result.ratios).length) {
    lines.push(`Ratios (Roomcast's best delivered rate within bounds over the peer's): ${Object.entries(result.ratios).map(([k, v]) => `${k} = ${v === null ? '∞ (peer sustained no step)' : `${v.toFixed(2)}×`}`).join(', ')}.`, '');
  }
  if (result.ratiosOverRounds && Object.keys(result.ratiosOverRounds).length) {
    lines.push(`Over the ${result.rounds.length} rounds: ${Object.entries(result.ratiosOverRounds).map(([k, v]) => `${k} median ${fmtRatio(v.median)} (${v.each.map(fmtRatio).join(', ')})`).join('; ')}.`, '');
  }
  if (result.targetsMet) {
    lines.push('| target | goal | measured | met |', '|---|---:|---:|---|');
    for (const [name, check] of Object.entries(result.targetsMet)) {
      if (!check) { lines.push(`| ${name} | | not measured (peer not in this run) | |`); continue; }
      const measured = typeof check.measured !== 'number' ? String(check.measured)
        : check.target >= 1000 ? rate(check.measured) : Number.isInteger(check.measured) ? String(check.measured) : `${check.measured.toFixed(2)}×`;
      const goal = check.target >= 1000 ? rate(check.target) : check.target > 0 ? `${check.target}×` : String(check.target);
      const shortBy = !check.met && typeof check.measured === 'number' && check.target > 0 ? ` (short by ${((1 - check.measured / check.target) * 100).toFixed(0)} %)` : '';
      lines.push(`| ${name}${check.note ? ` (${check.note})` : ''} | ${goal} | ${measured} | ${check.met ? 'yes' : `no${shortBy}`} |`);
    }
    lines.push('');
  }
  for (const target of result.targets ?? []) if (target.steps?.length) lines.push(...stepsTable(target), '');
  for (const target of result.targets ?? []) if (target.failed) lines.push(`**${target.target}**: ${target.failed}`, '');
  if (result.markdown) lines.push(...result.markdown, '');
  if (result.charts?.length) lines.push(...result.charts.map((file) => `![${file}](${file})`), '');
  const table = (title, entries) => {
    lines.push(title, '', '| self | function | where |', '|---:|---|---|');
    for (const entry of entries) lines.push(`| ${(entry.selfShare * 100).toFixed(1)} % | \`${entry.function}\` | ${entry.location} |`);
    lines.push('');
  };
  for (const [name, profile] of [['Gateway', result.profile], ['Room service', result.serviceProfile]]) {
    if (!profile) continue;
    if (profile.topDuringSteps) table(`${name} CPU profile (\`${profile.file}\`), top self time during the measured steps (share of busy time):`, profile.topDuringSteps);
    table(`Top self time over the ${name.toLowerCase()}'s whole run (connection set-up included):`, profile.top);
  }
  if (result.loadProfile) {
    lines.push(`Load generator profile (\`${result.loadProfile.file}\`), top self time:`, '', '| self | function | where |', '|---:|---|---|');
    for (const entry of result.loadProfile.top) lines.push(`| ${(entry.selfShare * 100).toFixed(1)} % | \`${entry.function}\` | ${entry.location} |`);
    lines.push('');
  }
  return lines;
}

/** The efficiency ratios of a `--rounds` run: per step, the median over the rounds, the range and each round's. */
function roundsTable(result) {
  const sends = result.efficiencyOverRounds.some((row) => row.ratioToLimitSends !== undefined);
  // The median, in bold where it is a headline figure, then the range.
  const range = (figures, bold = '') => (figures ? `${bold}${fmtRatio(figures.median)}${bold} (${fmtRatio(figures.min)}–${fmtRatio(figures.max)})` : '–');
  const cell = (figures, each) => (figures ? `${range(figures, '**')} | ${each.map(fmtRatio).join(', ')}` : '– | –');
  const lines = [
    `Efficiency over ${result.rounds.length} rounds (each round runs every system once, in the order above; the tables here are the last round's): the median of the rounds' ratios, their range, and each round's:`, '',
    `| msg/s | ratio: median (range) | each round |${sends ? ' ratio to limit peer + sends: median (range) | each round | limit peer + sends ÷ limit peer: median (range) |' : ''} rounds with the load core saturated |`,
    `|---:|---:|---|${sends ? '---:|---|---:|' : ''}---:|`,
  ];
  for (const row of result.efficiencyOverRounds) {
    lines.push(`| ${row.rateMsgPerS} | ${cell(row.ratio, row.ratios)} |${sends ? ` ${cell(row.ratioToLimitSends, row.ratiosToLimitSends ?? [])} | ${range(row.limitSendsOverLimit)} |` : ''} ${row.saturatedRounds} |`);
  }
  return lines;
}

/** Roomcast's steps in each round: p99 (✗ where out of bounds) and, where it was measured, the write path per message. */
function roomcastRoundsTable(rounds) {
  const rates = ratesIn(rounds.map((round) => round.roomcastSteps ?? []));
  const lines = [
    'Roomcast in each round: p99 ms (✗ out of bounds) and, where the step measured it, the write path per message: room service + NATS + Redis CPU µs:', '',
    `| msg/s |${rounds.map((_, index) => ` round ${index + 1} |`).join('')}`,
    `|---:|${rounds.map(() => '---:|').join('')}`,
  ];
  for (const rate of rates) {
    const cells = rounds.map((round) => {
      const step = round.roomcastSteps?.find((each) => each.rateMsgPerS === rate);
      if (!step) return '–';
      return `${ms(step.p99Ms)}${step.withinBounds ? '' : ' ✗'}${step.writePathUs === null ? '' : `, ${step.writePathUs} µs`}`;
    });
    lines.push(`| ${rate} |${cells.map((cell) => ` ${cell} |`).join('')}`);
  }
  return lines;
}

function charts(result, base, dir) {
  const withSteps = (result.targets ?? []).filter((target) => target.steps?.length);
  if (withSteps.length === 0) return [];
  const offered = withSteps.flatMap((target) => target.steps.map((step) => step.offeredPerS));
  const throughput = lineChart({
    title: `${result.scenario}${result.tag ? ` (${result.tag})` : ''}: delivered vs offered deliveries/s`,
    xLabel: 'offered deliveries/s (messages × recipients)',
    yLabel: 'delivered deliveries/s',
    series: withSteps.map((target) => ({ name: target.target, points: target.steps.map((step) => [step.offeredPerS, step.deliveredPerS, stepSaturated(step)]) })),
    guides: [{ name: 'offered', points: [[Math.min(...offered), Math.min(...offered)], [Math.max(...offered), Math.max(...offered)]] }],
  });
  const p99 = lineChart({
    title: `${result.scenario}${result.tag ? ` (${result.tag})` : ''}: p99 end-to-end latency`,
    xLabel: 'offered deliveries/s (messages × recipients)',
    yLabel: 'p99 latency, ms',
    series: withSteps.map((target) => ({ name: target.target, points: target.steps.filter((step) => step.latency.p99Ms).map((step) => [step.offeredPerS, step.latency.p99Ms, stepSaturated(step)]) })),
    thresholds: [{ y: result.options.p99BoundMs, label: `bound ${result.options.p99BoundMs} ms` }],
  });
  const files = [`${base}-throughput.svg`, `${base}-p99.svg`];
  writeFileSync(`${dir}${files[0]}`, throughput);
  writeFileSync(`${dir}${files[1]}`, p99);
  return files;
}

/** Writes the JSON, the charts and the day's summary; returns the paths written. */
export function writeResults(result, dir) {
  mkdirSync(dir, { recursive: true });
  const base = `${result.stamp}-${result.scenario}${result.tag ? `-${result.tag}` : ''}`;
  addComparisons(result);
  result.charts = charts(result, base, dir);
  writeFileSync(`${dir}${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  const sections = readdirSync(dir)
    .filter((file) => file.startsWith(`${result.stamp}-`) && file.endsWith('.json'))
    .sort()
    .map((file) => JSON.parse(readFileSync(`${dir}${file}`, 'utf8')))
    // Other measurements of the day (the viewer page's, say) share the folder but are not harness runs.
    .filter((other) => other.environment && other.scenario)
    .map(markdownFor);
  const summary = [`# Roomcast benchmark results, ${result.stamp}`, '', 'Written by `npm run bench`; see bench/README.md for what each figure means.', '', ...sections.flat()].join('\n');
  writeFileSync(`${dir}${result.stamp}-summary.md`, `${summary}\n`);
  return [`${dir}${base}.json`, ...result.charts.map((file) => `${dir}${file}`), `${dir}${result.stamp}-summary.md`];
}
