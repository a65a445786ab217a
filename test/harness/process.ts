// Spawns meshlet (built, from dist/) and other processes, collects their JSON log lines,
// and waits on what they print rather than on time.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MESHLET_BIN = path.join(ROOT, 'dist/cli/meshlet.js');

export interface Proc {
  child: ChildProcess;
  /** Every stdout/stderr line so far. */
  lines: string[];
  /** Parsed JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  /** Resolves with the first log line (JSON) for which `pred` holds, including earlier ones. */
  waitForLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  waitForLine(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** SIGTERM (or the given signal), then waits for exit; SIGKILL after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
  exited: Promise<number | null>;
  output(): string;
}

const running = new Set<Proc>();

export function spawnProcess(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Proc {
  const child = spawn(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, NODE_ENV: 'test', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const onData = (buf: { partial: string }) => (chunk: Buffer) => {
    const text = buf.partial + chunk.toString('utf8');
    const parts = text.split('\n');
    buf.partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      if (line.startsWith('{')) {
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          /* not JSON */
        }
      }
    }
  };
  child.stdout!.on('data', onData({ partial: '' }));
  child.stderr!.on('data', onData({ partial: '' }));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, sig) => resolve(code ?? (sig ? 128 : null))));
  const proc: Proc = {
    child,
    lines,
    logs,
    exited,
    output: () => lines.join('\n'),
    waitForLog: (pred, timeoutMs = 15_000) =>
      waitFor(
        () => {
          if (child.exitCode !== null) throw new Error(`process exited (${child.exitCode}):\n${lines.slice(-30).join('\n')}`);
          return logs.find(pred);
        },
        { timeoutMs, what: 'log line' },
      ).catch((e: Error) => {
        throw new Error(`${e.message}\n--- output ---\n${lines.slice(-40).join('\n')}`);
      }),
    waitForLine: (re, timeoutMs = 15_000) =>
      waitFor(
        () => {
          for (const l of lines) {
            const m = re.exec(l);
            if (m) return m;
          }
          if (child.exitCode !== null) throw new Error(`process exited (${child.exitCode})`);
          return undefined;
        },
        { timeoutMs, what: `line ${re}` },
      ).catch((e: Error) => {
        throw new Error(`${e.message}\n--- output ---\n${lines.slice(-40).join('\n')}`);
      }),
    stop: async (signal = 'SIGTERM', graceMs = 10_000) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(t);
      }
      running.delete(proc);
      return exited;
    },
  };
  running.add(proc);
  return proc;
}

export function spawnMeshlet(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Proc {
  return spawnProcess(process.execPath, [MESHLET_BIN, ...args], opts);
}

/** Kills whatever a test file left running (call from afterAll). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop('SIGKILL', 1000)));
}

export async function exitCode(p: Proc): Promise<number | null> {
  if (p.child.exitCode !== null) return p.child.exitCode;
  const [code] = (await once(p.child, 'exit')) as [number | null];
  return code;
}
