// `meshlet demo` from start to summary: start the topology, drive traffic through orders, make
// users-2 fail and heal it, push a config that shifts users' traffic to v2, stop everything.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../core/clock.js';
import { DemoDisplay, type InstanceView } from './demo-display.js';
import { DemoScoreboard } from './demo-scoreboard.js';
import { summarize, type DemoSummary } from './demo-summary.js';
import { DemoTopology, hostPortOf } from './demo-topology.js';
import { TrafficDriver } from './traffic-driver.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CONFIG_DIR = path.resolve(DIST, '../config/demo');

export interface DemoOptions {
  durationMs: number;
  rps: number;
  concurrency: number;
  display: DemoDisplay;
  /** Kept when given; a temporary directory (removed at the end) otherwise. */
  dataDir?: string;
  /** Aborted on Ctrl-C: stop early, still clean up and summarize. */
  signal: AbortSignal;
}

const VERSIONS = ['v1', 'v1', 'v2'] as const;
const FAULTY = 'users-2';
const PHASE = {
  healthy: 'all healthy',
  failing: `${FAULTY} failing`,
  healed: `${FAULTY} healed`,
  back: `${FAULTY} back in rotation`,
  pushing: 'pushing shift to v2',
  shifted: 'shifted to v2',
} as const;
/** When each step happens, as a share of --duration. */
const AT = { fault: 0.15, heal: 0.45, shift: 0.75 } as const;
const TICK_MS = 250;
const WARM_UP = { streak: 20, maxMs: 20_000 } as const;

/** Sequential GetOrders until `streak` succeed in a row (or time runs out). */
async function warmUp(base: string, signal: AbortSignal): Promise<{ sent: number; streak: number }> {
  const deadline = Date.now() + WARM_UP.maxMs;
  let sent = 0;
  let streak = 0;
  while (streak < WARM_UP.streak && Date.now() < deadline && !signal.aborted) {
    sent++;
    const ok = await fetch(`${base}/orders/${sent}`, { headers: { host: 'orders' }, signal: AbortSignal.timeout(5000) }).then(
      async (r) => (await r.arrayBuffer(), r.ok),
      () => false,
    );
    streak = ok ? streak + 1 : 0;
  }
  return { sent, streak };
}

export async function runDemo(o: DemoOptions): Promise<DemoSummary> {
  const display = o.display;
  const ownDir = o.dataDir === undefined;
  const dataDir = o.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'meshlet-demo-')));
  const meshConfigFile = path.join(CONFIG_DIR, 'mesh.yaml');
  const shiftText = await readFile(path.join(CONFIG_DIR, 'mesh-shift-v2.yaml'), 'utf8');

  display.note(`starting the demo mesh (data in ${dataDir}) …`);
  const topology = await DemoTopology.start({
    meshletBin: path.join(DIST, 'cli/meshlet.js'),
    servicesDir: path.join(DIST, 'demo-services'),
    dataDir,
    meshConfigFile,
    usersVersions: VERSIONS,
    // Nine Node processes start at once; on a busy 2-core machine that can take a while.
    startTimeoutMs: 60_000,
    progress: (l) => display.note(`  ${l}`),
  }).catch(async (e: unknown) => {
    if (ownDir) await rm(dataDir, { recursive: true, force: true });
    throw e;
  });

  const instances = topology.users.map((u) => ({ instance: u.instance, version: u.version }));
  const byAddress = new Map(topology.users.map((u) => [u.inbound, u.instance]));
  const views = new Map<string, InstanceView>(instances.map((i) => [i.instance, { ...i, breaker: '?', ejections: 0, faulty: false }]));
  const board = new DemoScoreboard(systemClock, instances.map((i) => i.instance));
  const faulty: { instance: string; faultAtMs?: number; healAtMs?: number; ejections: number; ejectedAtMs?: number; backAtMs?: number } = { instance: FAULTY, ejections: 0 };
  const shift: { configVersion?: string; pushedAtMs?: number; appliedAtMs?: number } = {};
  let servedAfterBack = 0;
  const failures: Record<string, number> = {};
  let retries: number | undefined;
  let retriesSource: DemoSummary['retriesSource'] = 'unavailable';

  display.note(
    `driving ${o.rps} GetOrder requests/s for ${o.durationMs / 1000}s through orders' sidecar (${topology.orders.inbound}); ` +
      `${FAULTY} fails at ${((o.durationMs * AT.fault) / 1000).toFixed(1)}s and heals at ${((o.durationMs * AT.heal) / 1000).toFixed(1)}s; the shift to v2 is pushed at ${((o.durationMs * AT.shift) / 1000).toFixed(1)}s`,
  );
  // Cold processes (JIT, connection pools) on a busy machine answer slowly at first: warm the path
  // up before the clock starts, so the first phase measures the mesh rather than the warm-up.
  const warm = await warmUp(`http://${topology.orders.inbound}`, o.signal);
  display.note(`warmed up: ${warm.sent} requests, the last ${warm.streak} in a row answered 200`);
  const stopTraffic = new AbortController();
  const driver = new TrafficDriver({
    target: hostPortOf(topology.orders.inbound),
    rps: o.rps,
    concurrency: o.concurrency,
    maxRequests: Math.ceil((o.rps * o.durationMs) / 1000),
    timeoutMs: 10_000,
    signal: stopTraffic.signal,
    onResult: (ok, instance, failure) => {
      board.record(ok, instance);
      if (failure !== undefined) failures[failure] = (failures[failure] ?? 0) + 1;
      if (ok && instance === FAULTY && faulty.backAtMs !== undefined) servedAfterBack++;
    },
  });
  board.start(PHASE.healthy);
  const traffic = driver.run();

  const pollBreakers = async () => {
    const endpoints = await topology.usersEndpoints();
    for (const e of endpoints) {
      const instance = byAddress.get(e.address);
      const view = instance && views.get(instance);
      if (!view) continue;
      const before = view.breaker;
      view.breaker = e.breaker;
      view.ejections = e.ejections;
      if (before !== '?' && before !== e.breaker) board.event(`breaker for ${instance}: ${before} → ${e.breaker}${e.breaker === 'open' ? ` (ejection #${e.ejections})` : ''}`);
      if (instance !== FAULTY) continue;
      faulty.ejections = Math.max(faulty.ejections, e.ejections);
      if (faulty.ejectedAtMs === undefined && e.ejections > 0) faulty.ejectedAtMs = board.elapsedMs();
      if (faulty.healAtMs !== undefined && faulty.backAtMs === undefined && e.ejections > 0 && e.breaker === 'closed') {
        faulty.backAtMs = board.elapsedMs();
        board.event(`${FAULTY} is back in rotation`);
        if (board.phase === PHASE.healed) board.setPhase(PHASE.back);
      }
    }
  };
  const refreshRetries = async () => {
    const fromMetrics = await topology.ordersRetries().catch(() => undefined);
    if (fromMetrics !== undefined) {
      retries = fromMetrics;
      retriesSource = 'sidecar metrics';
      return;
    }
    // Without metrics: every GetOrder makes one GetUser call, so extra calls the users apps saw were retries.
    const s = await topology.appStats().catch(() => undefined);
    if (s) {
      retries = Math.max(0, Object.values(s.users).reduce((a, b) => a + b, 0) - s.orders);
      retriesSource = 'app request counts';
    }
  };

  let lastShown = 0;
  try {
    while (!o.signal.aborted && board.elapsedMs() < o.durationMs) {
      const t = board.elapsedMs();
      if (faulty.faultAtMs === undefined && t >= o.durationMs * AT.fault) {
        await topology.setFault(FAULTY, { errorRate: 1 });
        faulty.faultAtMs = board.elapsedMs();
        views.get(FAULTY)!.faulty = true;
        board.setPhase(PHASE.failing);
        board.event(`${FAULTY} made faulty: POST /fault {"errorRate":1} (every answer 503)`);
      }
      if (faulty.healAtMs === undefined && t >= o.durationMs * AT.heal) {
        await topology.setFault(FAULTY, { errorRate: 0 });
        faulty.healAtMs = board.elapsedMs();
        views.get(FAULTY)!.faulty = false;
        board.setPhase(PHASE.healed);
        board.event(`${FAULTY} healed: POST /fault {"errorRate":0}`);
      }
      if (shift.pushedAtMs === undefined && t >= o.durationMs * AT.shift) {
        shift.configVersion = await topology.pushConfig(shiftText, 'meshlet demo: shift users traffic to v2 (90/10)');
        shift.pushedAtMs = board.elapsedMs();
        board.setPhase(PHASE.pushing);
        board.event(`pushed config version ${shift.configVersion} to the control plane (PUT /v1/config): users → 90% v2, 10% v1`);
      }
      if (shift.pushedAtMs !== undefined && shift.appliedAtMs === undefined && (await topology.ordersConfigVersion().catch(() => undefined)) === shift.configVersion) {
        shift.appliedAtMs = board.elapsedMs();
        board.setPhase(PHASE.shifted);
        board.event(`orders' sidecar applied config version ${shift.configVersion} (${Math.round(shift.appliedAtMs - shift.pushedAtMs)} ms after the push)`);
      }
      await pollBreakers().catch(() => undefined);
      if (t - lastShown >= 1000) {
        lastShown = t;
        await refreshRetries();
        display.show({ elapsedMs: t, durationMs: o.durationMs, phase: board.phase, lastSecond: board.lastSecond(), total: board.total(), retries, instances: [...views.values()], events: board.events() });
      }
      await new Promise((r) => setTimeout(r, TICK_MS));
    }
  } finally {
    stopTraffic.abort();
    await traffic;
  }
  const elapsedMs = board.elapsedMs();
  await refreshRetries();
  display.release();
  display.note('stopping every process …');
  await topology.stop();
  if (ownDir) await rm(dataDir, { recursive: true, force: true });
  const pids = topology.children.map((c) => c.pid).filter((p): p is number => p !== undefined);
  return summarize({
    interrupted: o.signal.aborted,
    elapsedMs,
    total: board.total(),
    phases: board.phases(),
    events: board.events(),
    instances,
    retries,
    retriesSource,
    faulty: { ...faulty, servedAfterBack },
    shift,
    failures,
    beforePhase: PHASE.healthy,
    shiftedPhase: PHASE.shifted,
    processes: { started: topology.children.length, leftRunning: topology.children.filter((c) => c.running).length, pids },
  });
}
