// The benches' child processes: output to a file (no pipe to drain, no reader competing for CPU),
// `listening` log lines read back for addresses, and CPU time read from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../test/harness/wait.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The path of `cmd` on PATH (and the sbin directories, where Debian puts nginx), or undefined. */
export function which(cmd: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) {
    const p = path.join(dir, cmd);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

/** utime + stime of a process, in microseconds (kernel accounting, CLK_TCK resolution). */
export function processCpuUs(pid: number, tickUs: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * tickUs; // utime, stime: fields 14 and 15 of proc(5)
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
  async listening(...names: string[]): Promise<Map<string, string>> {
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
      { timeoutMs: 30_000, what: `${this.name} to listen` },
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
