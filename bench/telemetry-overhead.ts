// Telemetry overhead: the sidecar's outbound path with metrics + tracing (1% sampled, exported over
// OTLP/HTTP to a local receiver) + access logs (every request, to a file) against the same sidecar
// with the noop observer, in interleaved rounds so machine drift hits every variant alike.
// Variants: bare (noopObserver), bare-again (a second one: the A/A control), metrics, metrics+access-log,
// metrics+tracing, full (all three).
// Per variant: requests/s at 32 connections, p50/p99, and the sidecar's CPU time per request
// (utime+stime from /proc/PID/stat): on a 2-core machine shared with the load generator, CPU per
// request is the steadier figure; so is the sidecar's count of write system calls per request (syscw
// from /proc/PID/io: the responses it sends plus any log writes, independent of the machine's load).
// Every party is its own process: upstream, OTLP receiver, each sidecar (compiled, with the node flags
// the meshlet executable uses), the load generator (wrk when installed). With --pin (the default on a
// machine with 2 or more CPUs) the sidecars share the last CPU and everything else the others, so the
// sidecar is what limits throughput and a throughput change is the sidecar's own. Then, in process on
// the CPU clock: the observer alone per variant, and the access log's writer candidates.
//
//   npx tsx bench/telemetry-overhead.ts [--rounds 5] [--duration 5] [--warmup 2] [--connections 32]
//                                       [--loadgen wrk|autocannon] [--pin auto|off]
//                                       [--mode auto|concurrent|sequential] [--variants bare,full]
//                                       [--in-process on|off] (off: skip the in-process sections)
//                                       [--fresh on|off] (on: new sidecar processes every round)
//                                       [--instructions PASSES] (callgrind's instructions per request, bench/instructions.ts;
//                                       with --rounds 0 nothing else is timed)
//                                       [--keep-counts DIR] (each pass's dumps, one per thread, for callgrind_annotate)
//                                       [--base DIR] (variants written NAME@base run NAME from the checkout in DIR:
//                                       two builds side by side in one run, e.g. --variants bare,bare-again,full@base,full)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MESHLET_NODE_ENV, MESHLET_NODE_FLAGS } from '../core/node-flags.js';
import { startOtlpReceiver } from '../test/harness/otlp-receiver.js';
import { chooseLoadGen, clockTickUs, compileBench, median, processCpuSplitUs, runLoad, which } from './bench-child.js';
import { countInstructions, INSTRUCTION_LOAD, instructionsUnavailable, instructionTitle, summarizeCounts, type InstructionCount } from './instructions.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// Children run the compiled bench (what a user runs is compiled code, not tsx's transform of it).
const COMPILED_SELF = path.join(ROOT, 'dist/bench/telemetry-overhead.js');
// metrics+access-log: the access log's cost on its own, against metrics, without tracing's noise.
// bare-again: a second bare sidecar, the A/A control. Two processes of the same code differ by a few
// per cent (JIT decisions, memory layout); a variant's change within that spread is no change.
// metrics+tracing-unsampled: tracing on at ratio 0 (context propagated, nothing recorded), so the cost
// of the sampled 1 % is metrics+tracing's minus this one's, in the same run.
// (Commit 51ca52b also has metrics+log-format, -copy, -array and -deferred, which took the old
// line-a-request access log apart: bench/RESULTS.md, "Telemetry overhead", session 12.)
const VARIANTS = ['bare', 'bare-again', 'metrics', 'metrics+access-log', 'metrics+tracing', 'metrics+tracing-unsampled', 'full'] as const;
type Variant = (typeof VARIANTS)[number];
const traces = (v: Variant): boolean => v === 'metrics+tracing' || v === 'metrics+tracing-unsampled' || v === 'full';
const logs = (v: Variant): boolean => v === 'metrics+access-log' || v === 'full';
// A run: a variant of this checkout's build, or `variant@base` of the --base checkout's. On a machine
// whose speed moves several per cent between runs (bench/RESULTS.md), two builds compare fairly only
// as pairs measured in the same rounds.
type Run = Variant | `${Variant}@base`;
const variantOf = (r: Run): Variant => (r.endsWith('@base') ? r.slice(0, -'@base'.length) : r) as Variant;
const HOST = 'bench';
const { values: opt } = parseArgs({
  options: {
    role: { type: 'string' },
    variant: { type: 'string' },
    variants: { type: 'string' },
    upstream: { type: 'string' },
    dir: { type: 'string' },
    url: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '32' },
    loadgen: { type: 'string' },
    pin: { type: 'string', default: 'auto' },
    mode: { type: 'string', default: 'auto' },
    'in-process': { type: 'string', default: 'on' },
    fresh: { type: 'string', default: 'off' },
    instructions: { type: 'string', default: '0' },
    'keep-counts': { type: 'string' },
    base: { type: 'string' },
  },
});

function say(obj: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

// ---- child roles ----------------------------------------------------------------------------

/**
 * The upstream: a canned keep-alive response per request, written straight to the socket. Requests
 * are counted by their header terminators (the sidecar sends GETs without bodies), so the upstream
 * costs a few µs a request and the CPU it shares with the load generator never becomes the limit.
 */
async function runUpstream(): Promise<void> {
  const body = JSON.stringify({ id: 42, name: 'bench', ok: true, pad: 'x'.repeat(40) });
  const response = Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nkeep-alive: timeout=65\r\n\r\n${body}`);
  const END = Buffer.from('\r\n\r\n');
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    let tail = Buffer.alloc(0); // the last bytes of the previous chunk: a terminator may straddle two
    socket.on('data', (chunk: Buffer) => {
      const data = tail.length > 0 ? Buffer.concat([tail, chunk]) : chunk;
      let n = 0;
      for (let at = data.indexOf(END); at !== -1; at = data.indexOf(END, at + END.length)) n++;
      const last = data.lastIndexOf(END);
      const rest = last === -1 ? data : data.subarray(last + END.length);
      tail = Buffer.from(rest.subarray(Math.max(0, rest.length - (END.length - 1))));
      if (n === 1) socket.write(response);
      else if (n > 1) socket.write(Buffer.concat(Array.from({ length: n }, () => response)));
    });
    socket.on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1', () => say({ msg: 'listening', listener: 'upstream', address: `127.0.0.1:${(server.address() as { port: number }).port}` }));
}

/** Takes OTLP/HTTP exports and throws them away, counting spans (the cost of a real collector is not ours). */
/** The tests' OTLP/HTTP receiver (protobuf or JSON), in its own process; it reports the spans it took on SIGTERM. */
async function runReceiver(): Promise<void> {
  const receiver = await startOtlpReceiver();
  say({ msg: 'listening', listener: 'receiver', address: new URL(receiver.endpoint).host });
  process.on('SIGTERM', () => {
    say({ msg: 'spans', spans: receiver.spans.length });
    process.exit(0);
  });
}

/**
 * The 95 % interval of the median of `xs` (percentile bootstrap, 4,000 resamples), from a fixed seed:
 * the same samples always give the same interval. How far a paired median can be trusted, on a
 * machine where rounds differ by several per cent.
 */
function bootstrapMedian(xs: readonly number[]): [number, number] {
  if (xs.length === 0) return [NaN, NaN];
  let seed = 0x2545f491;
  const random = (): number => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const medians = Array.from({ length: 4000 }, () => median(Array.from(xs, () => xs[Math.floor(random() * xs.length)]!))).sort((a, b) => a - b);
  return [medians[100]!, medians[3899]!];
}

async function runSidecar(variant: Variant, upstream: string, dir: string): Promise<void> {
  const { Sidecar } = await import('../sidecar/sidecar.js');
  const { makeSnapshot } = await import('../core/snapshot.js');
  const { createLogger } = await import('../core/log.js');
  const { createSidecarObserver } = await import('../core/telemetry/sidecar-observer.js');
  const { Registry, registerProcessMetrics } = await import('../core/telemetry/metrics.js');
  const { Tracing } = await import('../core/telemetry/tracing.js');
  const { AccessLog } = await import('../core/telemetry/access-log.js');
  const registry = new Registry();
  registerProcessMetrics(registry);
  const accessLog = logs(variant) ? new AccessLog({ destination: path.join(dir, `access-${process.pid}.log`) }) : undefined;
  const tracing = traces(variant) ? Tracing.fromEnv({ service: 'client' }) : undefined;
  const observer =
    variant === 'bare' || variant === 'bare-again'
      ? undefined
      : createSidecarObserver({
          registry,
          service: 'client',
          tracing,
          accessLog,
        });
  if (traces(variant) && !process.env.OTEL_EXPORTER_OTLP_ENDPOINT) throw new Error('tracing variant without OTEL_EXPORTER_OTLP_ENDPOINT');
  const log = createLogger('bench-sidecar', 'info');
  const sidecar = new Sidecar({
    service: 'client',
    outbound: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    observer,
    metrics: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
    log,
  });
  const port = Number(upstream.split(':')[1]);
  const config = {
    services: { [HOST]: { endpoints: [{ address: upstream }], retry: { attempts: 2 } } },
    // BENCH_ACCESS_LOG_RATIO: the access log's sampleRatio where there is one (default 1: every request).
    telemetry: { tracing: { sampleRatio: variant === 'metrics+tracing-unsampled' ? 0 : Number(process.env.BENCH_TRACE_RATIO ?? 0.01) }, accessLog: { sampleRatio: Number(process.env.BENCH_ACCESS_LOG_RATIO ?? 1) } },
  };
  const r = await sidecar.applySnapshot(makeSnapshot('bench', config, {}));
  if (!r.ok) throw new Error(`config refused: ${r.reason} (upstream port ${port})`);
  await sidecar.start();
  process.on('SIGTERM', () => {
    void (async () => {
      await sidecar.drain();
      await observer?.close();
      say({ msg: 'stopped', accessLogDropped: accessLog?.dropped ?? 0 });
      process.exit(0);
    })();
  });
}

/**
 * In-process CPU cost of the observer alone per request (ns), the same calls the data path makes, with
 * the event loop given a turn every 500 requests so exports and access log writes really happen.
 */
async function runMicro(dir: string, endpoint: string): Promise<void> {
  const { createSidecarObserver } = await import('../core/telemetry/sidecar-observer.js');
  const { Registry } = await import('../core/telemetry/metrics.js');
  const { Tracing } = await import('../core/telemetry/tracing.js');
  const { AccessLog } = await import('../core/telemetry/access-log.js');
  // The sidecar's exporter (a worker thread, OTLP/HTTP protobuf) to the bench's receiver.
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = endpoint;
  const N = 200_000;
  let accessLog: InstanceType<typeof AccessLog> | undefined;
  const make = (v: Variant) =>
    createSidecarObserver({
      registry: new Registry(),
      service: 'client',
      tracing: traces(v) ? Tracing.fromEnv({ service: 'client', sampleRatio: 0.01 }) : undefined,
      // Unbounded queue: 200k lines in about a second outrun a disk, and a dropped line costs nothing.
      accessLog: (accessLog = logs(v) ? new AccessLog({ destination: path.join(dir, `micro-${v}.log`), batch: { maxQueuedBytes: Infinity } }) : undefined),
    });
  const info = { service: HOST, route: 'default', backend: HOST, endpoint: '127.0.0.1:9', attempts: 1, retries: 0 };
  const out: Record<string, number> = {};
  for (const v of ['metrics', 'metrics+access-log', 'metrics+tracing', 'full'] as const) {
    let best = Infinity;
    for (let round = 0; round < 3; round++) {
      const obs = make(v);
      // CPU time, not wall time: on a busy machine a yielding loop waits for the scheduler.
      const c0 = process.cpuUsage();
      for (let i = 0; i < N; i++) {
        const t = obs.requestStarted({ direction: 'outbound', method: 'GET', authority: HOST, path: '/', headers: { host: HOST, 'user-agent': 'bench' }, startedAt: performance.now() });
        const h: Record<string, string> = {};
        t.attemptStarted(1, '127.0.0.1:9', h).end(200, undefined);
        t.end({ status: 200, info, durationMs: 0.8, bytesIn: 0, bytesOut: 120 });
        if (i % 500 === 499) await new Promise((r) => setImmediate(r));
      }
      await obs.close().catch(() => {});
      const c = process.cpuUsage(c0);
      if ((accessLog?.dropped ?? 0) > 0) throw new Error(`micro ${v}: the access log dropped ${accessLog!.dropped} lines`);
      rmSync(path.join(dir, `micro-${v}.log`), { force: true });
      best = Math.min(best, ((c.user + c.system) * 1000) / N);
    }
    out[v] = best;
  }
  say({ micro: out });
}

/**
 * The access log's writer alone: CPU time per line (ns, best of 3 × 200k lines, to a file) of the
 * candidates, with the event loop given a turn after every line (a loaded sidecar ends a request or a
 * few per turn) and after every 500. process.cpuUsage() counts the thread pool's writes too, and
 * /proc/self/io the write system calls of every thread.
 */
async function runWriters(dir: string): Promise<void> {
  const { pino } = await import('pino');
  const { openSync } = await import('node:fs');
  const { formatAccessLine } = await import('../core/telemetry/access-line.js');
  const { BatchedLineWriter } = await import('../core/telemetry/batched-line-writer.js');
  const N = 200_000;
  // Every candidate must write every line (a dropped line costs nothing): queues unbounded here.
  type Sink = { line(e: Record<string, unknown>): void; close(): Promise<void>; dropped?: () => number };
  // A fresh file per round, removed after it: gigabytes of old lines in the page cache would slow the
  // later candidates' writes (writeback throttling).
  const file = (name: string): string => path.join(dir, `writers-${name}.log`);
  const pinoTo = (dest: { write(s: string): unknown }) => pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  const endSonic = (d: ReturnType<typeof pino.destination>) => new Promise<void>((r) => (d.once('close', () => r()), d.end()));
  const candidates: Record<string, () => Sink> = {
    // What access-log.ts did before: a write as soon as none is in flight.
    'pino → sonic-boom, minLength 0 (before)': () => {
      const d = pino.destination({ dest: file('a'), sync: false, minLength: 0 });
      const l = pinoTo(d);
      return { line: (e) => l.info(e, 'access'), close: () => endSonic(d) };
    },
    // sonic-boom's own batching: minLength must stay below maxWrite; periodicFlush is its timer.
    'pino → sonic-boom, minLength 63 KiB + periodicFlush 200 ms': () => {
      const d = pino.destination({ dest: file('b'), sync: false, minLength: 63 * 1024, maxWrite: 64 * 1024, periodicFlush: 200 } as never);
      const l = pinoTo(d);
      return { line: (e) => l.info(e, 'access'), close: () => endSonic(d) };
    },
    'pino → BatchedLineWriter': () => {
      const w = new BatchedLineWriter({ destination: openSync(file('c'), 'a'), closeFd: true, maxQueuedBytes: Infinity });
      const l = pinoTo({ write: (s: string) => w.write(s) });
      return { line: (e) => l.info(e, 'access'), close: () => w.close(), dropped: () => w.dropped };
    },
    'formatAccessLine → BatchedLineWriter (now)': () => {
      const w = new BatchedLineWriter({ destination: openSync(file('d'), 'a'), closeFd: true, maxQueuedBytes: Infinity });
      return { line: (e) => w.write(formatAccessLine(e as never, Date.now())), close: () => w.close(), dropped: () => w.dropped };
    },
    'pino, formatting only (no-op stream)': () => {
      const l = pinoTo({ write: () => {} });
      return { line: (e) => l.info(e, 'access'), close: async () => {} };
    },
    'formatAccessLine only': () => {
      let keep = 0;
      return { line: (e) => void (keep += formatAccessLine(e as never, Date.now()).length), close: async () => void (keep += 0) };
    },
    'nothing (the loop and the entry object)': () => ({ line: () => {}, close: async () => {} }),
  };
  const out: Record<string, Record<string, number>> = {};
  for (const every of [1, 500]) {
    for (const [name, make] of Object.entries(candidates)) {
      let best = Infinity;
      let writes = Infinity;
      for (let round = 0; round < 3; round++) {
        const sink = make();
        const w0 = writeSyscalls(process.pid);
        const c0 = process.cpuUsage();
        for (let i = 0; i < N; i++) {
          // The entry sidecar-observer.ts builds, keys in its order.
          sink.line({ direction: 'outbound', method: 'GET', authority: HOST, path: `/api/users/${i}`, status: 200, errorCode: undefined, service: HOST, route: 'default', endpoint: '127.0.0.1:9101', attempts: 1, durationMs: 0.815, bytesIn: 0, bytesOut: 120, traceId: '4bf92f3577b34da6a3ce929d0e0e4736' });
          if (i % every === every - 1) await new Promise((r) => setImmediate(r));
        }
        await sink.close();
        const c = process.cpuUsage(c0);
        if ((sink.dropped?.() ?? 0) > 0) throw new Error(`${name} dropped lines`);
        for (const f of ['a', 'b', 'c', 'd']) rmSync(file(f), { force: true });
        best = Math.min(best, ((c.user + c.system) * 1000) / N);
        writes = Math.min(writes, (writeSyscalls(process.pid) - w0) / N);
      }
      (out[name] ??= {})[`every${every}`] = best;
      out[name][`writes${every}`] = writes;
    }
  }
  say({ writers: out });
}

// ---- orchestration --------------------------------------------------------------------------

interface Child {
  proc: ChildProcess;
  lines: string[];
  exited: Promise<void>;
}

/** A compiled bench role; `nodeFlags` before the script, `cpus` pins it (taskset execs node: same pid). */
function child(args: string[], env: Readonly<Record<string, string>> = {}, how: { nodeFlags?: readonly string[]; cpus?: string | undefined; script?: string } = {}): Child {
  const nodeArgs = [...(how.nodeFlags ?? []), how.script ?? COMPILED_SELF, ...args];
  const [cmd, argv] = how.cpus !== undefined ? ['taskset', ['-c', how.cpus, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const proc = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let partial = '';
  proc.stdout!.on('data', (c: Buffer) => {
    const parts = (partial + c.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return { proc, lines, exited };
}

async function waitLine(c: Child, pred: (o: Record<string, unknown>) => boolean, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const l of c.lines) {
      if (!l.startsWith('{')) continue;
      const o = JSON.parse(l) as Record<string, unknown>;
      if (pred(o)) return o;
    }
    if (c.proc.exitCode !== null) throw new Error(`child exited (${c.proc.exitCode})`);
    if (Date.now() > deadline) throw new Error('timed out waiting for a child');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Write system calls a process made so far (all its threads; Linux /proc). */
function writeSyscalls(pid: number): number {
  return Number(/^syscw: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))![1]);
}

async function stop(c: Child): Promise<void> {
  if (c.proc.exitCode === null) {
    c.proc.kill('SIGTERM');
    const t = setTimeout(() => c.proc.kill('SIGKILL'), 5_000);
    await c.exited;
    clearTimeout(t);
  }
}

interface Sample {
  variant: Run;
  round: number;
  rps: number;
  p50Us: number;
  p99Us: number;
  cpuUsPerReq: number;
  /** The kernel's part of cpuUsPerReq (stime). */
  sysUsPerReq: number;
  writesPerReq: number;
  errors: number;
}

async function main(): Promise<void> {
  const rounds = Number(opt.rounds);
  const duration = Number(opt.duration);
  const warmup = Number(opt.warmup);
  const connections = Number(opt.connections);
  const instructionPasses = Number(opt.instructions);
  for (const [k, v] of Object.entries({ rounds, duration, warmup, connections, instructions: instructionPasses })) {
    const least = k === 'warmup' || k === 'instructions' || (k === 'rounds' && instructionPasses > 0) ? 0 : 1;
    if (!Number.isInteger(v) || v < least || v > 600) throw new Error(`--${k}: expected a whole number from ${least} to 600`);
  }
  if (instructionPasses > 0) {
    const why = instructionsUnavailable();
    if (why !== undefined) throw new Error(`--instructions: ${why}`);
  }
  const loadgen = chooseLoadGen(opt.loadgen);
  if (loadgen instanceof Error) throw loadgen;
  if (opt.pin !== 'auto' && opt.pin !== 'off') throw new Error(`--pin: expected auto or off, got ${JSON.stringify(opt.pin)}`);
  const ncpu = os.availableParallelism();
  const pinned = opt.pin === 'auto' && ncpu >= 2 && which('taskset') !== undefined;
  const sidecarCpus = pinned ? String(ncpu - 1) : undefined;
  if (opt.mode !== 'auto' && opt.mode !== 'concurrent' && opt.mode !== 'sequential') throw new Error(`--mode: expected auto, concurrent or sequential, got ${JSON.stringify(opt.mode)}`);
  // Concurrent: every variant loaded at once, the sidecars sharing one CPU (the scheduler gives each
  // an equal share), so a change in the machine's speed hits all of them in the same instant and the
  // throughput ratio is the inverse of the CPU cost ratio. Needs pinning; sequential otherwise.
  const concurrent = opt.mode === 'concurrent';
  // --variants bare,full: fewer variants make shorter rounds, so each pair is measured closer in time.
  const variants = (opt.variants?.split(',') ?? [...VARIANTS]) as Run[];
  for (const v of variants) if (!VARIANTS.includes(variantOf(v))) throw new Error(`--variants: unknown variant ${JSON.stringify(v)} (expected some of ${VARIANTS.join(', ')}, each optionally @base)`);
  // The base checkout's compiled bench (npm run build and tsc -p bench/tsconfig.json there).
  const baseScript = opt.base !== undefined ? path.resolve(opt.base, 'dist/bench/telemetry-overhead.js') : undefined;
  if (variants.some((v) => v.endsWith('@base'))) {
    if (baseScript === undefined) throw new Error('--variants: NAME@base needs --base DIR (a checkout, built, with its bench compiled)');
    statSync(baseScript); // a missing build fails here, not in the middle of a round
  }
  const scriptOf = (v: Run): string => (v.endsWith('@base') ? baseScript! : COMPILED_SELF);
  if (variants[0] !== 'bare') throw new Error('--variants: the first must be bare (the others are compared with it)');
  if (concurrent && !pinned) throw new Error('--mode concurrent needs pinning (taskset and 2 or more CPUs, --pin auto)');
  if (opt.fresh !== 'on' && opt.fresh !== 'off') throw new Error(`--fresh: expected on or off, got ${JSON.stringify(opt.fresh)}`);
  const fresh = opt.fresh === 'on';
  const tickUs = clockTickUs();
  const otherCpus = pinned ? (ncpu === 2 ? '0' : `0-${ncpu - 2}`) : undefined;
  const compileError = compileBench();
  if (compileError !== undefined) throw new Error(compileError);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshlet-bench-telemetry-'));
  // Other work on the machine skews every figure; the load average says how much there was.
  const loadAtStart = os.loadavg()[0]!.toFixed(1);
  const parties: Child[] = [];
  // Interrupted: take every child process down with us.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const p of parties) p.proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  }
  try {
    const upstream = child(['--role', 'upstream'], {}, { cpus: otherCpus });
    parties.push(upstream);
    const upstreamAddr = String((await waitLine(upstream, (o) => o.msg === 'listening')).address);
    const receiver = child(['--role', 'receiver'], {}, { cpus: otherCpus });
    parties.push(receiver);
    const receiverAddr = String((await waitLine(receiver, (o) => o.msg === 'listening')).address);
    const load = (address: string, seconds: number) => runLoad(loadgen, address, HOST, connections, seconds, otherCpus);
    // A set of sidecars, one per variant, each warmed before it is measured. With --fresh on, every
    // round gets a new set: two processes of the same code differ by several per cent (JIT decisions,
    // memory layout), so one process per variant for the whole run carries that spread into every
    // pair; new processes each round make it part of the noise the median of pairs removes.
    type Sidecars = Map<Run, { c: Child; outbound: string }>;
    // Started all at once, so they are the same age when measured. Started one after another (the
    // list's order, every round), the variants listed later read 1.5-3 % faster than the first:
    // bare-again, third, +1.9 % and +1.2 % over bare, first, in two runs, and full ahead of full@base
    // by +2.1 % when listed last but behind by 2.4 % when listed second; started together, the A/A
    // control read −0.8 % and +0.1 % in two runs (RESULTS, sessions 10 and 11).
    const startSidecars = async (): Promise<Sidecars> => {
      const set: Sidecars = new Map(
        await Promise.all(
          variants.map(async (v) => {
            const c = child(['--role', 'sidecar', '--variant', variantOf(v), '--upstream', upstreamAddr, '--dir', dir], { OTEL_EXPORTER_OTLP_ENDPOINT: `http://${receiverAddr}`, OTEL_SERVICE_NAME: 'bench-client', ...MESHLET_NODE_ENV }, { nodeFlags: MESHLET_NODE_FLAGS, cpus: sidecarCpus, script: scriptOf(v) });
            parties.push(c);
            const outbound = String((await waitLine(c, (o) => o.msg === 'listening' && o.listener === 'outbound')).address);
            return [v, { c, outbound }] as const;
          }),
        ),
      );
      // Warmed as they are measured: one after another in sequential mode, all at once in concurrent
      // mode. Warming one at a time there left the first ones idle while the others warmed (V8 likely
      // shrinks an idle heap, memory-reducer GCs, which the round then pays for): with --fresh on the
      // variant listed last read ~8 % faster than bare even when it was full (RESULTS, session 7).
      if (warmup > 0) {
        if (concurrent) await Promise.all(variants.map((v) => load(set.get(v)!.outbound, warmup)));
        else for (const v of variants) await load(set.get(v)!.outbound, warmup);
      }
      return set;
    };
    // The access log measured (full's, or metrics+access-log's): its bytes and dropped lines, summed
    // over the processes that wrote one.
    const logger = variants.find((v) => logs(variantOf(v)));
    let accessLogBytes = 0;
    let accessLogDropped = logger === undefined ? NaN : 0;
    const stopSidecars = async (set: Sidecars): Promise<void> => {
      if (logger !== undefined) {
        try {
          accessLogBytes += statSync(path.join(dir, `access-${set.get(logger)!.c.proc.pid}.log`)).size;
        } catch {
          // no line written
        }
      }
      for (const v of variants) await stop(set.get(v)!.c);
      if (logger === undefined) return;
      const c = set.get(logger)!.c;
      accessLogDropped += Number((c.lines.map((l) => (l.startsWith('{') ? (JSON.parse(l) as { accessLogDropped?: number }) : {})).find((o) => o.accessLogDropped !== undefined) ?? { accessLogDropped: NaN }).accessLogDropped);
      // ~100 MB a process, and every logging variant writes one: not kept for the run
      for (const v of variants) rmSync(path.join(dir, `access-${set.get(v)!.c.proc.pid}.log`), { force: true });
    };
    const samples: Sample[] = [];
    if (rounds > 0) {
      let sidecars = await startSidecars();
      for (let round = 1; round <= rounds; round++) {
        if (fresh && round > 1) {
          await stopSidecars(sidecars);
          sidecars = await startSidecars();
        }
        // Rotate the order each round so no variant always runs first (or last) after a pause.
        const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
        const measure = async (v: Run): Promise<void> => {
          const s = sidecars.get(v)!;
          const pid = s.c.proc.pid!;
          const cpu0 = processCpuSplitUs(pid, tickUs);
          const w0 = writeSyscalls(pid);
          const r = await load(s.outbound, duration);
          const cpu1 = processCpuSplitUs(pid, tickUs);
          const w1 = writeSyscalls(pid);
          const reqs = Math.max(1, r.requests);
          const sample: Sample = { variant: v, round, rps: r.requests / r.durationS, p50Us: r.p50Us, p99Us: r.p99Us, cpuUsPerReq: (cpu1.totalUs - cpu0.totalUs) / reqs, sysUsPerReq: (cpu1.sysUs - cpu0.sysUs) / reqs, writesPerReq: (w1 - w0) / reqs, errors: r.errors + r.non2xx };
          samples.push(sample);
          process.stderr.write(`round ${round} ${v.padEnd(18)} ${sample.rps.toFixed(0).padStart(7)} req/s  p50 ${sample.p50Us}µs  p99 ${sample.p99Us}µs  cpu ${sample.cpuUsPerReq.toFixed(1)}µs/req (sys ${sample.sysUsPerReq.toFixed(1)})  writes ${sample.writesPerReq.toFixed(3)}/req  errors ${sample.errors}\n`);
        };
        if (concurrent) await Promise.all(order.map(measure));
        else for (const v of order) await measure(v);
      }
      await stopSidecars(sidecars);
    }
    let micro: Record<string, number> = {};
    let writers: Record<string, Record<string, number>> = {};
    if (opt['in-process'] !== 'off') {
      const m = child(['--role', 'micro', '--dir', dir, '--url', `http://${receiverAddr}`]);
      micro = (await waitLine(m, (o) => o.micro !== undefined, 600_000)).micro as Record<string, number>;
      await m.exited;
      const wr = child(['--role', 'writers', '--dir', dir]);
      writers = (await waitLine(wr, (o) => o.writers !== undefined, 600_000)).writers as Record<string, Record<string, number>>;
      await wr.exited;
    }
    // Instructions per request under callgrind: each variant in its own process, passes interleaved.
    const counts: { variant: Run; c: InstructionCount }[] = [];
    for (let pass = 1; pass <= instructionPasses; pass++) {
      for (const v of variants) {
        const c = await countInstructions(
          {
            name: `${v}-${pass}`,
            command: process.execPath,
            args: [...MESHLET_NODE_FLAGS, scriptOf(v), '--role', 'sidecar', '--variant', variantOf(v), '--upstream', upstreamAddr, '--dir', dir],
            env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://${receiverAddr}`, OTEL_SERVICE_NAME: 'bench-client', ...MESHLET_NODE_ENV },
            listener: 'outbound',
          },
          { dir, host: HOST, ...INSTRUCTION_LOAD, keep: opt['keep-counts'] },
        );
        counts.push({ variant: v, c });
        process.stderr.write(`instructions pass ${pass} ${v.padEnd(18)} main thread ${(c.mainPerRequest / 1000).toFixed(1)}k/req, other threads ${(c.otherPerRequest / 1000).toFixed(1)}k/req, failed ${c.failed}\n`);
      }
    }
    await stop(receiver);
    const spans = Number((receiver.lines.map((l) => (l.startsWith('{') ? (JSON.parse(l) as { spans?: number }) : {})).find((o) => o.spans !== undefined) ?? { spans: 0 }).spans);

    const bare = samples.filter((s) => s.variant === 'bare');
    const baseCpu = median(bare.map((s) => s.cpuUsPerReq));
    const rows = variants.map((v) => {
      const ss = samples.filter((s) => s.variant === v);
      const rps = median(ss.map((s) => s.rps));
      const cpu = median(ss.map((s) => s.cpuUsPerReq));
      // Each round's figure against bare's in the same round (minutes apart at most), then the median:
      // steadier than a ratio of medians when the machine's load drifts.
      const ratios = (f: (x: Sample) => number) => ss.map((x) => f(x) / f(bare.find((b) => b.round === x.round)!));
      const paired = (f: (x: Sample) => number) => median(ratios(f));
      return { variant: v, rps, rpsCost: 1 - paired((x) => x.rps), rpsInterval: bootstrapMedian(ratios((x) => x.rps)), p50Us: median(ss.map((s) => s.p50Us)), p99Us: median(ss.map((s) => s.p99Us)), cpuUsPerReq: cpu, cpuCost: paired((x) => x.cpuUsPerReq) - 1, writesPerReq: median(ss.map((s) => s.writesPerReq)), errors: ss.reduce((a, s) => a + s.errors, 0) };
    });
    const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
    if (rounds > 0) {
      console.log(`\n${rounds} ${concurrent ? 'rounds with every variant loaded at once' : 'interleaved rounds'}${fresh ? ' (new sidecar processes every round)' : ''} × ${duration}s at ${connections} connections${concurrent ? ' each' : ''}, loadgen ${loadgen}; medians. ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}; sidecars run with ${[...Object.entries(MESHLET_NODE_ENV).map(([k, v]) => `${k}=${v}`), ...MESHLET_NODE_FLAGS].join(' ')}${pinned ? `, pinned to CPU ${sidecarCpus} (everything else to ${otherCpus})` : ', not pinned'}; load average at start ${loadAtStart}, at end ${os.loadavg()[0]!.toFixed(1)}`);
      console.log('| variant | req/s | throughput vs bare (paired) | its 95 % interval | p50 µs | p99 µs | sidecar CPU µs/req | CPU vs bare (paired) | write syscalls/req | errors |');
      console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const r of rows) console.log(`| ${r.variant} | ${r.rps.toFixed(0)} | ${r.variant === 'bare' ? '—' : pct(-r.rpsCost)} | ${r.variant === 'bare' ? '—' : `${pct(r.rpsInterval[0] - 1)} … ${pct(r.rpsInterval[1] - 1)}`} | ${r.p50Us} | ${r.p99Us} | ${r.cpuUsPerReq.toFixed(1)} | ${r.variant === 'bare' ? '—' : pct(r.cpuCost)} | ${r.writesPerReq.toFixed(3)} | ${r.errors} |`);
      console.log('\nPer round (paired against bare in the same round): throughput change / CPU per request change');
      console.log(`| variant | ${Array.from({ length: rounds }, (_, i) => `round ${i + 1}`).join(' | ')} |`);
      console.log(`|---|${'---:|'.repeat(rounds)}`);
      for (const v of variants.slice(1)) {
        const cells = Array.from({ length: rounds }, (_, i) => {
          const x = samples.find((s) => s.variant === v && s.round === i + 1)!;
          const b = bare.find((s) => s.round === i + 1)!;
          return `${pct(x.rps / b.rps - 1)} / ${pct(x.cpuUsPerReq / b.cpuUsPerReq - 1)}`;
        });
        console.log(`| ${v} | ${cells.join(' | ')} |`);
      }
    }
    console.log(`\nspans received by the OTLP receiver: ${spans}${rounds > 0 ? `; access log written by "${logger ?? 'none'}" in the timed rounds: ${(accessLogBytes / 1e6).toFixed(1)} MB, lines dropped: ${accessLogDropped}` : ''}`);
    if (opt['in-process'] !== 'off') {
      console.log(`\nObserver alone, in-process CPU time (best of 3 × 200k requests; tracing 1% exported, access log to a file):`);
      console.log('| variant | ns/request | share of bare sidecar CPU/req |');
      console.log('|---|---:|---:|');
      for (const [v, ns] of Object.entries(micro)) console.log(`| ${v} | ${ns.toFixed(0)} | ${((ns / 1000 / baseCpu) * 100).toFixed(1)}% |`);
      console.log(`\nAccess log writer candidates, in-process CPU time per line to a file (best of 3 × 200k lines; "nothing" is the loop itself):`);
      console.log('| writer | ns/line, a loop turn per line | write syscalls/line | ns/line, a loop turn per 500 lines | write syscalls/line |');
      console.log('|---|---:|---:|---:|---:|');
      for (const [w, r] of Object.entries(writers)) console.log(`| ${w} | ${r.every1!.toFixed(0)} | ${r.writes1!.toFixed(3)} | ${r.every500!.toFixed(0)} | ${r.writes500!.toFixed(4)} |`);
    }
    if (counts.length > 0) {
      const sum = new Map(variants.map((v) => [v, summarizeCounts(counts.filter((x) => x.variant === v).map((x) => x.c))]));
      const bareMain = sum.get('bare')!.main;
      console.log(`\n${instructionTitle(instructionPasses, 'variant')}`);
      console.log('| variant | main thread / request | vs bare | every pass | other threads / request | failed |');
      console.log('|---|---:|---:|---|---:|---:|');
      for (const [v, x] of sum) {
        console.log(`| ${v} | ${(x.main / 1000).toFixed(1)}k | ${v === 'bare' ? '—' : pct(x.main / bareMain - 1)} | ${x.passes.map((m) => `${(m / 1000).toFixed(1)}k`).join(', ')} | ${(x.other / 1000).toFixed(1)}k | ${x.failed} |`);
      }
    }
  } finally {
    for (const p of parties.reverse()) await stop(p);
    rmSync(dir, { recursive: true, force: true });
  }
}

switch (opt.role) {
  case undefined:
    await main();
    break;
  case 'upstream':
    await runUpstream();
    break;
  case 'receiver':
    await runReceiver();
    break;
  case 'sidecar':
    if (!VARIANTS.includes(opt.variant as Variant) || !opt.upstream || !opt.dir) throw new Error('--role sidecar needs --variant, --upstream and --dir');
    await runSidecar(opt.variant as Variant, opt.upstream, opt.dir);
    break;
  case 'micro':
    await runMicro(opt.dir!, opt.url!);
    break;
  case 'writers': {
    const dir = opt.dir ?? mkdtempSync(path.join(os.tmpdir(), 'meshlet-bench-writers-'));
    await runWriters(dir);
    if (opt.dir === undefined) rmSync(dir, { recursive: true, force: true });
    break;
  }
  default:
    throw new Error(`unknown --role ${opt.role}`);
}
