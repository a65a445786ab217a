// Instructions per request, counted by valgrind's callgrind: the figure this noisy VM cannot disturb.
// Time-based figures here swing ±25 % between rounds and 8–12 % between two processes of the same
// code; the count of instructions a process retires for the same requests is the same within ~1 %
// from run to run, whatever else the machine does (bench/RESULTS.md, Data plane, session 4). Work
// done on timers rather than per request (a batch span processor's exports, the GC of what it held)
// lands inside the counted window or not, so a variant with such work reads unsteady (tracing:
// bench/RESULTS.md); compare the passes. What it leaves out: the kernel's share (system calls, the
// same four per request for every proxy here), cache misses and branch mispredictions. So it
// complements CPU time, not replaces it.
//
// The target runs under `valgrind --tool=callgrind --separate-threads=yes`, is warmed with enough
// requests for V8 to optimise the hot path (counted in requests, not seconds: valgrind runs it ~50×
// slower), its counters are zeroed (`callgrind_control -z`), `requests` more are sent, and the counts
// are dumped (`callgrind_control -d`). The main thread's count is the request path; the other
// threads' (V8's compiler, libuv's pool) are reported beside it. valgrind runs one thread at a time;
// --fair-sched=yes hands its lock round in turn, so the main thread waiting on the compiler thread
// does not spin. Counts are not disturbed by other work, but run one at a time all the same: each
// takes a core, and its load generator another.
import { spawnSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Pool } from 'undici';
import { BenchChild, median, which } from './bench-child.js';

// Start-up under valgrind: 20–60 s for a sidecar that loads OpenTelemetry, more on a busy machine.
const START_TIMEOUT_MS = 300_000;

export interface InstructionTarget {
  /** Names the child's log and count files. */
  name: string;
  command: string;
  args: string[];
  env?: Readonly<Record<string, string>>;
  /** The `listener` of the child's `{"msg":"listening",…}` line that takes the requests. */
  listener: string;
}

export interface InstructionCount {
  requests: number;
  /** Instructions of the main thread (the event loop: every request's JavaScript and node:http's C++) per request. */
  mainPerRequest: number;
  /** Instructions of every other thread per request (V8's compiler thread, libuv's pool). */
  otherPerRequest: number;
  /** Responses other than 200 (the count is of failures too, but then says little). */
  failed: number;
}

export interface InstructionOptions {
  dir: string;
  host: string;
  warmupRequests: number;
  requests: number;
  connections: number;
  /** A directory to copy the dumps into (NAME.callgrind the main thread's, NAME.NN.callgrind the others'), for callgrind_annotate. */
  keep?: string | undefined;
}

/** What the benches count with: enough warm-up requests for V8 to optimise a proxy's path, then the counted ones. */
// BENCH_WARMUP_REQUESTS overrides the warm-up (to see whether a count is still falling at 8,000).
export const INSTRUCTION_LOAD = { warmupRequests: warmupFromEnv(process.env.BENCH_WARMUP_REQUESTS) ?? 8_000, requests: 3_000, connections: 8 } as const;

function warmupFromEnv(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 1_000_000) throw new Error(`BENCH_WARMUP_REQUESTS="${v}": expected a whole number from 0 to 1000000`);
  return n;
}

/** The sentence above an instruction table: how many passes of what, and how they were counted. */
export function instructionTitle(passes: number, per: string): string {
  return `Instructions per request under callgrind (${passes} pass${passes > 1 ? 'es' : ''} per ${per}, each a new process: ${INSTRUCTION_LOAD.warmupRequests} requests of warm-up, then ${INSTRUCTION_LOAD.requests} counted at ${INSTRUCTION_LOAD.connections} connections; user space only, medians):`;
}

/** One target's passes: the medians of its main-thread and other-thread counts, each pass's main count, and its failures. */
export function summarizeCounts(passes: readonly InstructionCount[]): { main: number; passes: number[]; other: number; failed: number } {
  return {
    main: median(passes.map((p) => p.mainPerRequest)),
    passes: passes.map((p) => p.mainPerRequest),
    other: median(passes.map((p) => p.otherPerRequest)),
    failed: passes.reduce((n, p) => n + p.failed, 0),
  };
}

/** Why instruction counting cannot run here, or undefined when valgrind and callgrind_control are installed. */
export function instructionsUnavailable(): string | undefined {
  if (!which('valgrind') || !which('callgrind_control')) return 'valgrind is not installed (apt-get install -y valgrind)';
  return undefined;
}

/** `count` GETs with `Host: host` over `connections` keep-alive connections; the number of non-200 answers. */
async function send(address: string, host: string, count: number, connections: number): Promise<number> {
  const pool = new Pool(`http://${address}`, { connections, pipelining: 1 });
  let sent = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (sent < count) {
      sent++;
      // Generous timeouts: under valgrind a request takes milliseconds, and the first ones seconds.
      const r = await pool.request({ path: '/', method: 'GET', headers: { host }, headersTimeout: 120_000, bodyTimeout: 120_000 });
      await r.body.dump();
      if (r.statusCode !== 200) failed++;
    }
  };
  try {
    await Promise.all(Array.from({ length: connections }, worker));
  } finally {
    await pool.close();
  }
  return failed;
}

function callgrindControl(flag: '-z' | '-d', pid: number): void {
  const r = spawnSync('callgrind_control', [flag, String(pid)], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`callgrind_control ${flag} ${pid} failed (exit ${r.status}): ${r.stdout}${r.stderr}`);
}

/** The `summary:` count of a callgrind output file. */
function summary(file: string): number {
  const m = /^summary: (\d+)$/m.exec(readFileSync(file, 'utf8'));
  if (!m) throw new Error(`${file}: no summary line`);
  return Number(m[1]);
}

export async function countInstructions(t: InstructionTarget, o: InstructionOptions): Promise<InstructionCount> {
  const prefix = `${t.name.replace(/[^\w.-]/g, '_')}.cg`;
  const child = new BenchChild(`${t.name}.valgrind`, o.dir, 'valgrind', ['--tool=callgrind', '--separate-threads=yes', '--smc-check=all-non-file', '--fair-sched=yes', `--callgrind-out-file=${path.join(o.dir, `${prefix}.%p`)}`, t.command, ...t.args], t.env);
  try {
    const address = (await child.listeningWithin(START_TIMEOUT_MS, t.listener)).get(t.listener)!;
    await send(address, o.host, o.warmupRequests, o.connections);
    callgrindControl('-z', child.pid);
    const failed = await send(address, o.host, o.requests, o.connections);
    callgrindControl('-d', child.pid);
    // The first dump, one file per thread: PREFIX.PID.1-01 is the main thread.
    const dumped = readdirSync(o.dir).filter((f) => f.startsWith(`${prefix}.${child.pid}.1-`));
    const main = dumped.find((f) => f.endsWith('-01'));
    if (main === undefined) throw new Error(`${t.name}: callgrind wrote no dump for the main thread (${dumped.join(', ') || 'no files'})`);
    // Kept as NAME.callgrind (the main thread) and NAME.THREAD.callgrind (the others).
    if (o.keep !== undefined) {
      for (const f of dumped) copyFileSync(path.join(o.dir, f), path.join(o.keep, `${t.name.replace(/[^\w.+-]/g, '_')}${f === main ? '' : `.${f.slice(f.lastIndexOf('-') + 1)}`}.callgrind`));
    }
    const other = dumped.filter((f) => f !== main).reduce((n, f) => n + summary(path.join(o.dir, f)), 0);
    return { requests: o.requests, mainPerRequest: summary(path.join(o.dir, main)) / o.requests, otherPerRequest: other / o.requests, failed };
  } finally {
    await child.stop();
  }
}
