// Deadline precision: how late, against the configured deadline T, the client gets the sidecar's
// 504 UPSTREAM_TIMEOUT from a hanging upstream (issue 2: "within 50 ms of the deadline"). Two cases,
// alternated request by request:
//   total    — retries configured, no per-try timeout: the total deadline cuts the only try;
//   per-try  — a per-try timeout (default 0.6 T) cuts try 1, the retry hangs too and the total
//              deadline cuts it.
// Two phases on one sidecar: idle, one request at a time; then the same while wrk (or autocannon)
// keeps 32 connections busy against a fast upstream through the same sidecar. Lateness is
// client-side (performance.now() from the request written to the 504's headers parsed) minus T, and
// is split, with the hanging upstream's own times, into client → upstream, the cut (last try's close
// − first try's arrival − T) and upstream close → 504 at the client. To say why a 504 is late, each
// phase also reads the sidecar's event-loop delay (prom-client's monitorEventLoopDelay gauges on its
// /metrics, reset at each scrape), its CPU, the time its loop thread waited for a CPU
// (/proc/PID/schedstat) and its GC pauses (--trace-gc). Every process is its own; each request,
// each phase and the load are bounded in count and time.
//
//   npx tsc -p tsconfig.json && npx tsx bench/deadline.ts [--requests 100] [--timeout 200ms]
//       [--per-try 120ms] [--connections 32[,256…]] [--loadgen wrk|autocannon] [--warmup 5]
//       [--contention N] [--sidecar-node-options='FLAGS'] [--json FILE]
// The sidecar runs with the meshlet executable's node flags and MALLOC_ARENA_MAX unless
// --sidecar-node-options says otherwise ('' for node's defaults).
// One load phase per --connections value; --contention N adds, after each, the same phase with N
// busy-loop processes running (each bounded by its own deadline), to reproduce a shared machine.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseDuration } from '../core/duration.js';
import { MESHLET_NODE_ENV, MESHLET_NODE_FLAGS } from '../core/node-flags.js';
import { waitFor } from '../test/harness/wait.js';
import { BenchChild, chooseLoadGen, clockTickUs, compileBench, loadCommand, processCpuUs, type LoadGen, type LoadResult } from './bench-child.js';
import type { HangingStats, HangingTry } from './hanging-upstream.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');
const TARGET_LATENESS_MS = 50;
const CASES = ['total', 'per-try'] as const;
type CaseName = (typeof CASES)[number];
/** 'idle', or 'load c=N'. */
type PhaseName = string;
/** prom-client samples the loop with a 10 ms repeating timer; its gauges include those 10 ms. */
const SIDECAR_ELD_RESOLUTION_MS = 10;
const CLIENT_ELD_RESOLUTION_MS = 1;
/** A request gets this much beyond T before the client gives up on it (counted as a failure). */
const CLIENT_GRACE_MS = 5_000;

interface Options {
  requests: number;
  timeoutMs: number;
  perTryMs: number;
  connections: number[];
  loadgen: LoadGen;
  warmup: number;
  /** Busy-loop processes added in an extra phase per load level: a shared machine, on purpose. */
  contention: number;
  /** Extra node flags for the sidecar process (e.g. --single-threaded-gc), to test a mitigation. */
  sidecarNodeOptions: string[];
  json: string | undefined;
}

interface Sample {
  phase: PhaseName;
  case: CaseName;
  id: string;
  /** Epoch ms (timeOrigin + now), comparable with the hanging upstream's times. */
  sentAt: number;
  receivedAt: number;
  latenessMs: number;
  status: number;
  errorHeader: string | undefined;
  bodyCode: string | undefined;
  tries: HangingTry[];
  /** The bench client's own worst event-loop stall while this request was out (ms beyond the 1 ms sampling). */
  clientStallMs: number;
  /** Why this sample is not a clean 504 UPSTREAM_TIMEOUT with the expected tries, if it is not. */
  problem: string | undefined;
}

interface PhaseView {
  phase: PhaseName;
  wallS: number;
  sidecarCpuPct: number;
  /** Sidecar event-loop delay beyond the 10 ms sampling period, over the phase (ms). */
  sidecarEld: { p50: number; p99: number; max: number };
  clientEld: { p50: number; p99: number; max: number };
  /** Time the sidecar's main (event-loop) thread spent runnable but waiting for a CPU (/proc/PID/schedstat). */
  sidecarRunQueueMs: number;
  clientRunQueueMs: number;
  /**
   * Machine CPU busy during the phase, in cores (of nproc): all; processes outside this bench; interrupt
   * time (softirq: mostly this bench's own loopback traffic); steal. The kernel may also charge
   * interrupt time to whichever process was running, so "others" is approximate by that much.
   */
  machine: { busyCores: number; othersCores: number; irqCores: number; stealCores: number };
  /** The sidecar's GC pauses during the phase (from its --trace-gc lines). */
  gc: { count: number; totalMs: number; maxMs: number; maxKind: string };
  /** Per case: requests the sidecar's own clock timed above `slowLe` seconds (receipt → response closed), of all. */
  sidecarSlow: Record<CaseName, { over: number; total: number }>;
  slowLe: number;
  /** Background requests/s to the fast service, from the sidecar's own counter. */
  loadRps: number;
  loadReport: LoadResult | undefined;
}


function fail(msg: string): never {
  process.stderr.write(`bench/deadline: ${msg}\n`);
  process.exit(2);
}

function parseOptions(): Options {
  let v;
  try {
    v = parseArgs({
      options: {
        requests: { type: 'string', default: '100' },
        timeout: { type: 'string', default: '200ms' },
        'per-try': { type: 'string' },
        connections: { type: 'string', default: '32' },
        loadgen: { type: 'string' },
        warmup: { type: 'string', default: '5' },
        contention: { type: 'string', default: '0' },
        // Default: the flags the meshlet executable runs with (its shebang); '' for node's own defaults.
        'sidecar-node-options': { type: 'string', default: MESHLET_NODE_FLAGS.join(' ') },
        json: { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (e) {
    fail((e as Error).message);
  }
  const int = (flag: string, s: string, min: number, max: number): number => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < min || n > max) fail(`--${flag}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(s)}`);
    return n;
  };
  const dur = (flag: string, s: string, min: number, max: number): number => {
    const ms = parseDuration(s);
    if (ms === undefined || ms < min || ms > max) fail(`--${flag}: expected a duration from ${min}ms to ${max}ms such as "200ms", got ${JSON.stringify(s)}`);
    return ms;
  };
  const timeoutMs = dur('timeout', v.timeout!, 20, 5_000);
  const perTryMs = v['per-try'] === undefined ? Math.round(0.6 * timeoutMs) : dur('per-try', v['per-try'], 1, 5_000);
  // Try 1 must be cut by the per-try timeout, and try 2 by the total deadline before its own runs out.
  if (!(perTryMs < timeoutMs && 2 * perTryMs > timeoutMs)) fail(`--per-try: must lie between T/2 and T (T = ${timeoutMs}ms), got ${perTryMs}ms`);
  const loadgen = chooseLoadGen(v.loadgen);
  if (loadgen instanceof Error) fail(loadgen.message);
  return {
    requests: int('requests', v.requests!, 5, 2_000),
    timeoutMs,
    perTryMs,
    connections: v.connections!.split(',').map((c) => int('connections', c.trim(), 1, 1024)),
    loadgen,
    warmup: int('warmup', v.warmup!, 0, 100),
    contention: int('contention', v.contention!, 0, 16),
    sidecarNodeOptions: v['sidecar-node-options']!.split(' ').filter(Boolean),
    json: v.json,
  };
}

const epochMs = (t = performance.now()): number => performance.timeOrigin + t;

/** Time (ms) this thread has spent runnable but not running, waiting for a CPU (field 2 of schedstat). */
function runQueueMs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e6;
}

// `[pid:isolate]  1234 ms: Scavenge 9.9 (12.3) -> 9.4 (13.3) MB, 1.03 / 0.00 ms  (…` — the first figure is the pause.
const GC_LINE = /^\[\d+:0x[0-9a-f]+\]\s+\d+ ms: ([A-Za-z-]+(?: \([a-z]+\))?) .*?MB, ([\d.]+) \/ [\d.]+ ms/;

/** GC pauses in `text` (a slice of a --trace-gc log). */
function gcPauses(text: string): PhaseView['gc'] {
  const gc = { count: 0, totalMs: 0, maxMs: 0, maxKind: '–' };
  for (const line of text.split('\n')) {
    const m = GC_LINE.exec(line);
    if (!m) continue;
    const ms = Number(m[2]);
    gc.count++;
    gc.totalMs += ms;
    if (ms > gc.maxMs) (gc.maxMs = ms), (gc.maxKind = m[1]!);
  }
  return gc;
}

/** Machine-wide CPU time from /proc/stat, in ticks: busy (all but idle and iowait), interrupts, steal. */
function machineTicks(): { busy: number; irq: number; steal: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return { busy: user + nice + system + irq + softirq + steal, irq: irq + softirq, steal };
}


/** Nearest-rank percentile of an ascending array. */
function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const ascending = (xs: number[]): number[] => xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);

function fmt(n: number | undefined, digits = 1): string {
  return n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits);
}

async function getText(url: string): Promise<string> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  return r.text();
}

interface Scrape {
  eld: PhaseView['sidecarEld'];
  fastRequests: number;
  /** Per case, the sidecar's own request-duration histogram: count, and count above `le` seconds. */
  slow: Record<CaseName, { total: number; within: number }>;
  le: number;
}

/**
 * The sidecar's /metrics: the event-loop delay gauges (reset by this scrape), the fast service's
 * request count and, per deadline service, how many requests its own clock timed within the first
 * histogram bucket at or above `atLeastS` (a coarse, sidecar-side view of lateness).
 */
async function scrape(admin: string, atLeastS: number): Promise<Scrape> {
  const text = await getText(`http://${admin}/metrics`);
  const gauge = (name: string): number => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) * 1000 - SIDECAR_ELD_RESOLUTION_MS : NaN;
  };
  let fastRequests = 0;
  for (const line of text.split('\n')) if (line.startsWith('meshlet_requests_total{') && line.includes('service="fast"')) fastRequests += Number(line.slice(line.lastIndexOf(' ') + 1));
  const buckets = [...text.matchAll(/^meshlet_request_duration_seconds_bucket\{[^}]*le="([\d.e+-]+)"/gm)].map((m) => Number(m[1]));
  const le = Math.min(...buckets.filter((b) => b >= atLeastS - 1e-9));
  const slow = { total: { total: 0, within: 0 }, 'per-try': { total: 0, within: 0 } };
  for (const line of text.split('\n')) {
    const c = CASES.find((k) => line.includes(`service="${HOSTS[k]}"`));
    if (!c) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith('meshlet_request_duration_seconds_count{')) slow[c].total += v;
    else if (line.startsWith('meshlet_request_duration_seconds_bucket{') && Number(/le="([^"]+)"/.exec(line)?.[1]) === le) slow[c].within += v;
  }
  return { eld: { p50: gauge('nodejs_eventloop_lag_p50_seconds'), p99: gauge('nodejs_eventloop_lag_p99_seconds'), max: gauge('nodejs_eventloop_lag_max_seconds') }, fastRequests, slow, le };
}

/** The sidecar's connection pool to `address` (one pool per address, shared by the services using it). */
async function poolStats(admin: string, address: string): Promise<{ connected: number; free: number; running: number } | undefined> {
  const body = JSON.parse(await getText(`http://${admin}/endpoints`)) as { services: Record<string, { endpoints: Array<{ address: string; pool?: { connected: number; free: number; running: number } }> }> };
  for (const svc of Object.values(body.services)) for (const e of svc.endpoints) if (e.address === address && e.pool) return e.pool;
  return undefined;
}

async function hangingStats(control: string): Promise<HangingStats> {
  return JSON.parse(await getText(`http://${control}/stats`)) as HangingStats;
}

type Reply = Pick<Sample, 'id' | 'sentAt' | 'receivedAt' | 'status' | 'errorHeader' | 'bodyCode'> & { elapsedMs: number; error?: string };

/** One request; resolves when the response is complete, or with status 0 after T + grace. */
function timedRequest(agent: http.Agent, outbound: string, host: string, id: string, limitMs: number): Promise<Reply> {
  const [hostname, port] = outbound.split(':');
  return new Promise((resolve) => {
    let sent = 0;
    let received = 0;
    const req = http.request({ hostname, port: Number(port), path: '/deadline', method: 'GET', agent, headers: { host, 'x-bench-id': id } }, (res) => {
      received = performance.now();
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        clearTimeout(limit);
        let bodyCode: string | undefined;
        try {
          bodyCode = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
        } catch {
          bodyCode = undefined;
        }
        const h = res.headers['x-meshlet-error'];
        resolve({ id, sentAt: epochMs(sent), receivedAt: epochMs(received), elapsedMs: received - sent, status: res.statusCode ?? 0, errorHeader: typeof h === 'string' ? h : undefined, bodyCode });
      });
    });
    const limit = setTimeout(() => req.destroy(new Error(`no answer within ${limitMs} ms`)), limitMs);
    req.on('error', (e) => {
      clearTimeout(limit);
      resolve({ id, sentAt: epochMs(sent), receivedAt: NaN, elapsedMs: NaN, status: 0, errorHeader: undefined, bodyCode: undefined, error: e.message });
    });
    sent = performance.now();
    req.end();
  });
}

function meshYaml(fast: string, hanging: string, opts: Options): string {
  // The breaker and the retry budget are kept out of the way: every request here fails by design,
  // and a CIRCUIT_OPEN 503 or a refused retry would measure something else.
  const common = [
    `    endpoints: [{ address: ${hanging} }]`,
    `    timeout: ${opts.timeoutMs}ms`,
    '    circuitBreaker: { consecutiveFailures: 1000000 }',
  ];
  const budget = 'budget: { ratio: 10, minPerSecond: 1000 }';
  return [
    'apiVersion: meshlet/v1',
    'services:',
    '  fast:',
    `    endpoints: [{ address: ${fast} }]`,
    '    timeout: 10s',
    '  deadline-total:',
    ...common,
    `    retry: { attempts: 3, on: [connect-failure, reset, timeout, gateway-error], backoff: { base: 1ms, max: 2ms }, ${budget} }`,
    '  deadline-per-try:',
    ...common,
    `    retry: { attempts: 3, perTryTimeout: ${opts.perTryMs}ms, on: [timeout], backoff: { base: 1ms, max: 2ms }, ${budget} }`,
    '',
  ].join('\n');
}

const HOSTS: Record<CaseName, string> = { total: 'deadline-total', 'per-try': 'deadline-per-try' };
const EXPECTED_TRIES: Record<CaseName, number> = { total: 1, 'per-try': 2 };

function startLoad(opts: Options, connections: number, outbound: string, seconds: number): { proc: ChildProcess; report: Promise<LoadResult | undefined> } {
  const [cmd, args] = loadCommand(opts.loadgen, outbound, 'fast', connections, seconds);
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  // Bounded: killed if it overruns its own duration by 20 s.
  const killer = setTimeout(() => proc.kill('SIGKILL'), (seconds + 20) * 1000);
  const report = new Promise<LoadResult | undefined>((resolve) =>
    proc.once('exit', () => {
      clearTimeout(killer);
      const line = out.split('\n').find((l) => l.startsWith('{"requests"'));
      resolve(line ? (JSON.parse(line) as LoadResult) : undefined);
    }),
  );
  return { proc, report };
}

async function main(): Promise<void> {
  const opts = parseOptions();
  if (!existsSync(path.join(DIST, 'cli/meshlet.js'))) fail('dist/cli/meshlet.js is missing: run `npx tsc -p tsconfig.json` first');
  // The upstreams run as plain JS from dist/bench (no tsx loader in their processes).
  const compileError = compileBench();
  if (compileError !== undefined) fail(compileError);
  const tickUs = clockTickUs();
  const git = (...a: string[]): string => spawnSync('git', a, { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  const commit = git('rev-parse', '--short', 'HEAD') || 'unknown';
  const dirty = git('status', '--porcelain', '--', 'core', 'sidecar', 'cli');

  const startedAt = new Date();
  const loadAtStart = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshlet-deadline-'));
  const children: BenchChild[] = [];
  let load: ReturnType<typeof startLoad> | undefined;
  const start = (name: string, cmd: string, args: string[], env?: Readonly<Record<string, string>>): BenchChild => {
    const c = new BenchChild(name, dir, cmd, args, env);
    children.push(c);
    return c;
  };
  const cleanup = async (): Promise<void> => {
    if (load && load.proc.exitCode === null && load.proc.signalCode === null) load.proc.kill('SIGKILL');
    await Promise.all(children.map((c) => c.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cleanup().then(() => process.exit(130)));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const clientEld = monitorEventLoopDelay({ resolution: CLIENT_ELD_RESOLUTION_MS });
  clientEld.enable();
  // A second, per-request view of the same thing: was the client itself stalled while a 504 was due?
  const requestEld = monitorEventLoopDelay({ resolution: CLIENT_ELD_RESOLUTION_MS });
  requestEld.enable();

  try {
    const hanging = start('hanging-upstream', process.execPath, [path.join(DIST, 'bench/hanging-upstream.js')]);
    const fast = start('fast-upstream', process.execPath, [path.join(DIST, 'bench/upstream.js'), '1']);
    const h = await hanging.listening('hanging', 'control');
    const hangingAddr = h.get('hanging')!;
    const control = h.get('control')!;
    const fastAddr = (await fast.listening('upstream-0')).get('upstream-0')!;
    const meshFile = path.join(dir, 'mesh.yaml');
    writeFileSync(meshFile, meshYaml(fastAddr, hangingAddr, opts));
    // --trace-gc: one line per GC with its pause, to tell GC pauses from waiting for a CPU.
    const sidecar = start('sidecar', process.execPath, [
      '--trace-gc', ...opts.sidecarNodeOptions, path.join(DIST, 'cli/meshlet.js'), 'sidecar', '--service', 'deadline-bench', '--config', meshFile,
      '--outbound', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--data-dir', path.join(dir, 'data'), '--access-log', 'off',
    ], MESHLET_NODE_ENV);
    const addrs = await sidecar.listening('outbound', 'admin');
    const outbound = addrs.get('outbound')!;
    const admin = addrs.get('admin')!;
    await waitFor(() => getText(`http://${admin}/ready`).then(() => true), { timeoutMs: 15_000, what: 'sidecar /ready' });
    const check = await timedRequest(agent, outbound, 'fast', 'check', 5_000);
    if (check.status !== 200) fail(`the fast service does not answer through the sidecar (${check.status} ${check.error ?? ''})`);

    const slowS = (opts.timeoutMs + TARGET_LATENESS_MS) / 1000;
    let seq = 0;
    const samples: Sample[] = [];
    /** One deadline request of `c`; its upstream tries are matched afterwards. */
    const one = async (phase: PhaseName, c: CaseName): Promise<Sample> => {
      requestEld.reset();
      const r = await timedRequest(agent, outbound, HOSTS[c], `${phase}-${c}-${seq++}`, opts.timeoutMs + CLIENT_GRACE_MS);
      let problem: string | undefined;
      if (r.status !== 504) problem = r.error ?? `status ${r.status}`;
      else if (r.errorHeader !== 'UPSTREAM_TIMEOUT') problem = `x-meshlet-error ${r.errorHeader ?? '(none)'}`;
      else if (r.bodyCode !== 'UPSTREAM_TIMEOUT') problem = `body code ${r.bodyCode ?? '(none)'}`;
      return { ...r, phase, case: c, latenessMs: r.elapsedMs - opts.timeoutMs, clientStallMs: requestEld.max / 1e6 - CLIENT_ELD_RESOLUTION_MS, tries: [], problem };
    };

    /** Runs `opts.requests` of each case, alternating, until done or `stop()` says so; reads the sidecar around it. */
    const ours = (extra: number[]): number => [process.pid, sidecar.pid, hanging.pid, fast.pid, ...extra].reduce((sum, pid) => sum + processCpuUs(pid, tickUs), 0);
    const phase = async (name: PhaseName, stop: () => boolean, budgetMs: number, loadPid?: number): Promise<{ view: Omit<PhaseView, 'loadReport'>; samples: Sample[] }> => {
      const extra = loadPid === undefined ? [] : [loadPid];
      const m0 = machineTicks();
      const ours0 = ours(extra);
      const before = await scrape(admin, slowS); // also resets the sidecar's loop-delay histogram
      const cpu0 = processCpuUs(sidecar.pid, tickUs);
      const rq0 = runQueueMs(sidecar.pid);
      const crq0 = runQueueMs(process.pid);
      const log0 = statSync(sidecar.log).size;
      clientEld.reset();
      const t0 = performance.now();
      const got: Sample[] = [];
      for (let i = 0; i < 2 * opts.requests && !stop() && performance.now() - t0 < budgetMs; i++) got.push(await one(name, CASES[i % 2]!));
      const wallS = (performance.now() - t0) / 1000;
      const after = await scrape(admin, slowS);
      const sidecarSlow = Object.fromEntries(
        CASES.map((c) => {
          const total = after.slow[c].total - before.slow[c].total;
          return [c, { total, over: total - (after.slow[c].within - before.slow[c].within) }];
        }),
      ) as PhaseView['sidecarSlow'];
      const cpu = processCpuUs(sidecar.pid, tickUs) - cpu0;
      const m1 = machineTicks();
      const oursUs = ours(extra) - ours0;
      const cores = (ticks: number): number => (ticks * tickUs) / 1e6 / wallS;
      const machine = {
        busyCores: cores(m1.busy - m0.busy),
        othersCores: cores(m1.busy - m0.busy - (m1.irq - m0.irq) - (m1.steal - m0.steal)) - oursUs / 1e6 / wallS,
        irqCores: cores(m1.irq - m0.irq),
        stealCores: cores(m1.steal - m0.steal),
      };
      const rq = runQueueMs(sidecar.pid) - rq0;
      const crq = runQueueMs(process.pid) - crq0;
      const gc = gcPauses(readFileSync(sidecar.log).subarray(log0).toString('utf8'));
      const celd = { p50: clientEld.percentile(50) / 1e6 - CLIENT_ELD_RESOLUTION_MS, p99: clientEld.percentile(99) / 1e6 - CLIENT_ELD_RESOLUTION_MS, max: clientEld.max / 1e6 - CLIENT_ELD_RESOLUTION_MS };
      return {
        view: { phase: name, wallS, sidecarCpuPct: cpu / 1e4 / wallS, sidecarEld: after.eld, clientEld: celd, sidecarRunQueueMs: rq, clientRunQueueMs: crq, machine, gc, sidecarSlow, slowLe: after.le, loadRps: (after.fastRequests - before.fastRequests) / wallS },
        samples: got,
      };
    };
    // Each request is bounded by T + grace; a phase by this much in all.
    const phaseBudgetMs = 2 * opts.requests * (opts.timeoutMs + 250) * 2 + 10_000;

    // Warm-up (JIT, first connections), not recorded.
    for (let i = 0; i < 2 * opts.warmup; i++) await one('idle', CASES[i % 2]!);
    const statsBefore = await hangingStats(control);

    process.stderr.write(`idle: ${opts.requests} requests per case, one at a time, T = ${opts.timeoutMs} ms, per-try ${opts.perTryMs} ms\n`);
    const idle = await phase('idle', () => false, phaseBudgetMs);
    samples.push(...idle.samples);

    const views: PhaseView[] = [{ ...idle.view, loadReport: undefined }];
    const notes: string[] = [];
    const loadSeconds = Math.ceil(phaseBudgetMs / 1000) + 15;
    const specs = opts.connections.flatMap((connections) => (opts.contention > 0 ? [0, opts.contention] : [0]).map((spinners) => ({ connections, spinners })));
    for (const { connections, spinners } of specs) {
      const name = `load c=${connections}${spinners ? ` + ${spinners} busy processes` : ''}`;
      process.stderr.write(`${name}: ${opts.loadgen} -c${connections} to the fast service through the same sidecar (stopped when the phase ends, at most ${loadSeconds} s)\n`);
      const l = (load = startLoad(opts, connections, outbound, loadSeconds));
      const ended = (): boolean => l.proc.exitCode !== null || l.proc.signalCode !== null;
      // Each spinner stops by itself after loadSeconds even if this process dies.
      for (let i = 0; i < spinners; i++) start(`spinner-${connections}-${i}`, process.execPath, ['-e', `const end = Date.now() + ${loadSeconds * 1000}; while (Date.now() < end);`]);
      // Measure only once the load flows: the sidecar has answered 2,000 of its requests.
      const base = (await scrape(admin, slowS)).fastRequests;
      await waitFor(async () => {
        if (ended()) throw new Error(`${opts.loadgen} exited early (${l.proc.exitCode})`);
        return (await scrape(admin, slowS)).fastRequests - base >= 2_000;
      }, { timeoutMs: 20_000, intervalMs: 200, what: 'background load to flow' });
      const loaded = await phase(name, ended, phaseBudgetMs, l.proc.pid);
      if (ended()) notes.push(`${name}: the load generator ended before the phase did; ${loaded.samples.length} of ${2 * opts.requests} requests were measured under load`);
      samples.push(...loaded.samples);
      await Promise.all(children.filter((c) => c.name.startsWith('spinner-')).map((c) => c.stop('SIGKILL')));
      l.proc.kill(opts.loadgen === 'wrk' ? 'SIGINT' : 'SIGTERM'); // wrk prints its report on SIGINT
      views.push({ ...loaded.view, loadReport: await l.report });
      load = undefined;
    }

    // Every try is abandoned by the sidecar: the hanging upstream should end with no socket open.
    const statsEnd = await hangingStats(control);
    const pool = await poolStats(admin, hangingAddr);
    const settleT0 = performance.now();
    const settled = await waitFor(async () => {
      const s = await hangingStats(control);
      return s.openConnections === 0 && s.inflight === 0 ? s : undefined;
    }, { timeoutMs: 10_000, intervalMs: 50, what: 'hanging upstream to have no open connection' }).catch(() => undefined);
    const settleMs = performance.now() - settleT0;
    const statsFinal = settled ?? (await hangingStats(control));

    for (const s of samples) {
      s.tries = statsFinal.tries[s.id] ?? [];
      // A per-try cut that itself came after the total deadline (a late timer) rightly gets no retry.
      const retrySkipped = s.case === 'per-try' && s.tries.length === 1 && s.tries[0]!.closedAt! - s.sentAt >= opts.timeoutMs - 2;
      if (s.problem === undefined && s.tries.length !== EXPECTED_TRIES[s.case] && !retrySkipped) s.problem = `${s.tries.length} tries at the upstream (expected ${EXPECTED_TRIES[s.case]})`;
      if (s.problem === undefined && s.tries.some((t) => t.closedAt === undefined)) s.problem = 'a try still open at the upstream';
    }

    const loadAtEnd = os.loadavg().map((l) => l.toFixed(2)).join(' ');
    const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
    const nproc = spawnSync('nproc', { encoding: 'utf8' }).stdout.trim() || String(os.availableParallelism());

    const rows = views.flatMap((v) =>
      CASES.map((c) => {
        const xs = samples.filter((s) => s.phase === v.phase && s.case === c);
        const clean = xs.filter((s) => s.problem === undefined);
        const late = ascending(clean.map((s) => s.latenessMs));
        const toUp = ascending(clean.map((s) => s.tries[0]!.arrivedAt - s.sentAt));
        const cut = ascending(clean.map((s) => s.tries.at(-1)!.closedAt! - s.tries[0]!.arrivedAt - opts.timeoutMs));
        const back = ascending(clean.map((s) => s.receivedAt - s.tries.at(-1)!.closedAt!));
        const firstCut = c === 'per-try' ? ascending(clean.map((s) => s.tries[0]!.closedAt! - s.tries[0]!.arrivedAt - opts.perTryMs)) : [];
        // Where the lateness of each sample beyond the target went: the largest of the three parts.
        const overTarget = clean.filter((s) => s.latenessMs > TARGET_LATENESS_MS);
        const blame = { toUpstream: 0, cut: 0, back: 0 };
        for (const s of overTarget) {
          const parts = { toUpstream: s.tries[0]!.arrivedAt - s.sentAt, cut: s.tries.at(-1)!.closedAt! - s.tries[0]!.arrivedAt - opts.timeoutMs, back: s.receivedAt - s.tries.at(-1)!.closedAt! };
          const worst = (Object.keys(parts) as Array<keyof typeof parts>).reduce((a, b) => (parts[b] > parts[a] ? b : a));
          blame[worst]++;
        }
        const clientStalled = overTarget.filter((s) => s.clientStallMs >= s.latenessMs - TARGET_LATENESS_MS).length;
        const problems = new Map<string, number>();
        for (const s of xs) if (s.problem) problems.set(s.problem, (problems.get(s.problem) ?? 0) + 1);
        return {
          phase: v.phase,
          case: c,
          n: xs.length,
          clean: clean.length,
          problems: [...problems].map(([p, n]) => `${n}× ${p}`).join('; '),
          late: { min: late[0], p50: pct(late, 50), p99: pct(late, 99), max: late.at(-1) },
          toUpstream: { p50: pct(toUp, 50), p99: pct(toUp, 99) },
          cut: { p50: pct(cut, 50), p99: pct(cut, 99), max: cut.at(-1) },
          back: { p50: pct(back, 50), p99: pct(back, 99) },
          firstCut: { p50: pct(firstCut, 50), p99: pct(firstCut, 99) },
          retriesSkipped: xs.filter((s) => s.case === 'per-try' && s.problem === undefined && s.tries.length === 1).length,
          overTarget: overTarget.length,
          blame,
          clientStalled,
          sidecarSlow: v.sidecarSlow[c],
          slowLe: v.slowLe,
        };
      }),
    );

    const d = (a: number, b: number): number => a - b;
    const lines = [
      `${startedAt.toISOString()} · meshlet ${commit}${dirty ? ' (uncommitted changes in core/sidecar/cli: in the build measured)' : ''} · Node ${process.version} · nproc ${nproc} · ${cpuModel} · load average at start ${loadAtStart}, at end ${loadAtEnd}`,
      `T = ${opts.timeoutMs} ms (total deadline); per-try ${opts.perTryMs} ms in the per-try case; ${opts.requests} requests per case per phase, one at a time, cases alternated; ${opts.warmup} per case of warm-up not counted${opts.sidecarNodeOptions.length ? `; sidecar node flags: ${opts.sidecarNodeOptions.join(' ')}` : ''}. Lateness = client-side time from request written to 504 headers − T, in ms.`,
      '',
      '| phase | case | 504 UPSTREAM_TIMEOUT, tries as expected | lateness min | p50 | p99 | max | client → upstream p50 / p99 | cut: last close − first arrival − T, p50 / p99 / max | upstream close → 504 at client p50 / p99 | > target late: n (largest part, upstream-seen: → upstream / cut / → client; bench client loop also stalled ≥ the excess) | sidecar\'s own clock: over T + target |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...rows.map(
        (r) =>
          `| ${r.phase} | ${r.case} | ${r.clean}/${r.n} | ${fmt(r.late.min)} | ${fmt(r.late.p50)} | ${fmt(r.late.p99)} | ${fmt(r.late.max)} | ${fmt(r.toUpstream.p50)} / ${fmt(r.toUpstream.p99)} | ${fmt(r.cut.p50)} / ${fmt(r.cut.p99)} / ${fmt(r.cut.max)} | ${fmt(r.back.p50)} / ${fmt(r.back.p99)} | ${r.overTarget} (${r.blame.toUpstream} / ${r.blame.cut} / ${r.blame.back}; ${r.clientStalled}) | ${r.sidecarSlow.over}/${r.sidecarSlow.total} over ${r.slowLe} s |`,
      ),
      '',
      `| phase | wall | sidecar CPU (% of one core) | sidecar event-loop delay p50 / p99 / max (beyond its 10 ms sampling period) | machine CPU busy (cores of ${nproc}): all / other processes (busy loops included; approx., ± interrupt time) / interrupts / steal | sidecar loop thread waiting for a CPU | sidecar GC pauses: n, total, max | bench client: loop delay p99 / max, waiting for a CPU | background req/s: sidecar count (loadgen count) | loadgen latency p50 / p99 | loadgen errors |`,
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...views.map(
        (v) =>
          `| ${v.phase} | ${fmt(v.wallS)} s | ${fmt(v.sidecarCpuPct, 0)}% | ${fmt(v.sidecarEld.p50)} / ${fmt(v.sidecarEld.p99)} / ${fmt(v.sidecarEld.max)} ms | ${fmt(v.machine.busyCores, 2)} / ${fmt(v.machine.othersCores, 2)} / ${fmt(v.machine.irqCores, 2)} / ${fmt(v.machine.stealCores, 2)} | ${fmt(v.sidecarRunQueueMs, 0)} ms (${fmt(v.sidecarRunQueueMs / 10 / v.wallS)}% of wall) | ${v.gc.count}, ${fmt(v.gc.totalMs, 0)} ms, ${fmt(v.gc.maxMs)} ms (${v.gc.maxKind}) | ${fmt(v.clientEld.p99)} / ${fmt(v.clientEld.max)} ms, ${fmt(v.clientRunQueueMs, 0)} ms | ${v.phase === 'idle' ? '–' : `${fmt(v.loadRps, 0)} req/s (${v.loadReport ? `${opts.loadgen}: ${fmt(v.loadReport.requests / v.loadReport.durationS, 0)}` : opts.loadgen})`} | ${v.loadReport ? `${fmt(v.loadReport.p50Us / 1000)} / ${fmt(v.loadReport.p99Us / 1000)} ms` : '–'} | ${v.loadReport ? v.loadReport.errors + v.loadReport.non2xx : '–'} |`,
      ),
      '',
      `Hanging upstream over all phases (after warm-up): ${d(statsFinal.requests, statsBefore.requests)} tries received, ${d(statsFinal.aborted, statsBefore.aborted)} abandoned by the sidecar (connection closed unanswered), connections opened ${d(statsFinal.connectionsOpened, statsBefore.connectionsOpened)} / closed ${d(statsFinal.connectionsClosed, statsBefore.connectionsClosed)}; open right after the last 504: ${statsEnd.openConnections} (tries in flight ${statsEnd.inflight}; the sidecar's pool for it at that moment: ${pool ? `${pool.connected} connected, ${pool.free} free, ${pool.running} running` : 'not found in /endpoints'}), ${settled ? `0 after ${fmt(settleMs, 0)} ms` : `still ${statsFinal.openConnections} after 10 s`}.`,
    ];
    for (const r of rows) if (r.problems) lines.push(`- ${r.phase}/${r.case}: ${r.problems}`);
    for (const r of rows) if (r.case === 'per-try' && r.clean > 0) lines.push(`- ${r.phase}/per-try: try 1 cut at the per-try timeout + ${fmt(r.firstCut.p50)} ms (p50) / ${fmt(r.firstCut.p99)} ms (p99), seen from the upstream${r.retriesSkipped ? `; ${r.retriesSkipped} with no retry because that cut came after the total deadline` : ''}`);
    for (const n of notes) lines.push(`- ${n}`);
    lines.push('');
    lines.push(`Target (issue 2): the client gets 504 UPSTREAM_TIMEOUT within ${TARGET_LATENESS_MS} ms of the deadline, read as p99 lateness ≤ ${TARGET_LATENESS_MS} ms:`);
    for (const r of rows) {
      const ok = r.clean === r.n && r.late.p99 <= TARGET_LATENESS_MS;
      lines.push(`- ${r.phase}, ${r.case}: p99 ${fmt(r.late.p99)} ms, max ${fmt(r.late.max)} ms${r.clean !== r.n ? `, ${r.n - r.clean} not a clean 504` : ''} → ${ok ? 'met' : 'MISSED'}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    if (opts.json) writeFileSync(opts.json, JSON.stringify({ options: opts, commit, dirty: Boolean(dirty), views, rows, samples }, null, 2));
  } finally {
    agent.destroy();
    clientEld.disable();
    requestEld.disable();
    await cleanup();
  }
}

await main();
