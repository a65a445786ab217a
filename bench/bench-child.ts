// The benches' child processes: output to a file (no pipe to drain, no reader competing for CPU),
// `listening` log lines read back for addresses, and CPU time read from /proc.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../test/harness/wait.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');

export type LoadGen = 'wrk' | 'autocannon';

/** --loadgen's value (default: wrk when installed, else autocannon), or an Error saying what is wrong. */
export function chooseLoadGen(value: string | undefined): LoadGen | Error {
  const loadgen = value ?? (which('wrk') ? 'wrk' : 'autocannon');
  if (loadgen !== 'wrk' && loadgen !== 'autocannon') return new Error(`--loadgen: expected wrk or autocannon, got ${JSON.stringify(loadgen)}`);
  if (loadgen === 'wrk' && !which('wrk')) return new Error('--loadgen wrk: wrk is not installed (apt-get install -y wrk), or use --loadgen autocannon');
  return loadgen;
}

/** What one load run reports (wrk through bench/wrk-report.lua, autocannon through load-autocannon.ts). */
export interface LoadResult {
  requests: number;
  durationS: number;
  p50Us: number;
  p99Us: number;
  errors: number;
  non2xx: number;
}

/** The command line of a load run that prints one LoadResult JSON line (wrk prints it on SIGINT too). */
export function loadCommand(loadgen: LoadGen, address: string, host: string, connections: number, seconds: number): [string, string[]] {
  const url = `http://${address}/`;
  return loadgen === 'wrk'
    ? ['wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '-H', `Host: ${host}`, '-s', path.join(ROOT, 'bench/wrk-report.lua'), url]]
    : [process.execPath, [path.join(DIST, 'bench/load-autocannon.js'), url, String(connections), String(seconds), host]];
}

/**
 * One bounded load run against `http://address/` with `Host: host`: wrk (one thread) or autocannon,
 * ended by its own duration and killed 20 s after it. `cpus` pins the load generator (taskset -c).
 */
export function runLoad(loadgen: LoadGen, address: string, host: string, connections: number, seconds: number, cpus?: string): Promise<LoadResult> {
  let [cmd, args] = loadCommand(loadgen, address, host, connections, seconds);
  if (cpus !== undefined) [cmd, args] = ['taskset', ['-c', cpus, cmd, ...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 20) * 1000);
    // 'close', not 'exit': exit may come before the last of stdout is read.
    child.once('close', (code) => {
      clearTimeout(killer);
      const line = out.split('\n').find((l) => l.startsWith('{"requests"'));
      if (code !== 0 || !line) return reject(new Error(`${loadgen} against ${address} failed (exit ${code}): ${out.slice(-1000)}`));
      resolve(JSON.parse(line) as LoadResult);
    });
  });
}

/** The path of `cmd` on PATH (and the sbin directories, where Debian puts nginx), or undefined. */
export function which(cmd: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) {
    const p = path.join(dir, cmd);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

/** The median of the finite values (NaN when there are none). */
export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Compiles bench/ (and the project code it imports) to dist/, so child processes run plain compiled
 * JS: no tsx loader in them. The compiler's output when it fails, else undefined.
 */
export function compileBench(): string | undefined {
  const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'bench/tsconfig.json')], { encoding: 'utf8' });
  return tsc.status === 0 ? undefined : `compiling bench/ failed:\n${tsc.stdout}${tsc.stderr}`;
}

/** One tick of the kernel's CPU accounting (1/CLK_TCK s), in microseconds: processCpuUs's unit. */
export function clockTickUs(): number {
  return 1e6 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100);
}

/** utime + stime of a process, in microseconds (kernel accounting, CLK_TCK resolution). */
export function processCpuUs(pid: number, tickUs: number): number {
  return processCpuSplitUs(pid, tickUs).totalUs;
}

/** utime+stime and stime alone (the kernel's share, tick-sampled by Linux) of a process, in microseconds, from one read. */
export function processCpuSplitUs(pid: number, tickUs: number): { totalUs: number; sysUs: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const sysUs = Number(fields[12]) * tickUs; // utime, stime: fields 14 and 15 of proc(5)
  return { totalUs: Number(fields[11]) * tickUs + sysUs, sysUs };
}

/** A child process whose output goes to a file (no pipe to drain, no reader competing for CPU). */
export class BenchChild {
  readonly name: string;
  readonly log: string;
  readonly proc: ChildProcess;

  constructor(name: string, dir: string, cmd: string, args: string[], env: Readonly<Record<string, string>> = {}) {
    this.name = name;
    this.log = path.join(dir, `${name}.log`);
    const fd = openSync(this.log, 'w');
    this.proc = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', fd, fd], env: { ...process.env, NODE_ENV: 'production', ...env } });
    closeSync(fd);
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get exited(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  /** Addresses from `{"msg":"listening","listener":…,"address":…}` lines, once every one of `names` is printed. */
  listening(...names: string[]): Promise<Map<string, string>> {
    return this.listeningWithin(30_000, ...names);
  }

  /** listening(), for a child that may take longer than 30 s to start (one under valgrind). */
  async listeningWithin(timeoutMs: number, ...names: string[]): Promise<Map<string, string>> {
    return waitFor(
      () => {
        if (this.exited) throw new Error(`${this.name} exited (${this.proc.exitCode ?? this.proc.signalCode}): ${readFileSync(this.log, 'utf8').slice(-2000)}`);
        const found = new Map<string, string>();
        for (const line of readFileSync(this.log, 'utf8').split('\n')) {
          if (!line.includes('"listening"')) continue;
          const l = JSON.parse(line) as { listener?: string; address?: string };
          if (l.listener && l.address) found.set(l.listener, l.address);
        }
        return names.every((n) => found.has(n)) ? found : undefined;
      },
      { timeoutMs, what: `${this.name} to listen` },
    );
  }

  /** Sends `signal`, then SIGKILL if it is still there after 5 s. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill(signal);
    const killer = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killer);
  }
}
