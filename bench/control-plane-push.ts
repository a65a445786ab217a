// Control-plane push benchmark: time from PUT /v1/config until every watcher has the new snapshot,
//   (a) for N real `meshlet sidecar` processes (until each has APPLIED it: its "snapshot applied" log line),
//   (b) for M simulated SSE watch clients living in a separate process (until each has RECEIVED it),
// with p50/p99 over all (watcher, round) pairs and of the per-round slowest watcher; plus the
// control plane's RSS growth per connected watcher (VmRSS before/after connecting them).
//
//   npx tsc -p tsconfig.json && npx tsx bench/control-plane-push.ts [--sidecars 10] [--watchers 1000] [--rounds 20] [--services 20]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SseDecoder } from '../sidecar/control-plane-client.js';
import { waitFor } from '../test/harness/wait.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');
const MESHLET = path.join(ROOT, 'dist/cli/meshlet.js');
/** Wall-clock ms with sub-ms precision, comparable across processes on one machine. */
const now = (): number => performance.timeOrigin + performance.now();

const { values: opt } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    url: { type: 'string' },
    sidecars: { type: 'string', default: '10' },
    watchers: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '20' },
    services: { type: 'string', default: '20' },
    // Writes a V8 CPU profile of the control plane to this directory (open it in Chrome DevTools).
    profile: { type: 'string' },
  },
});


// ---------------------------------------------------------------- simulated watchers (child process)
async function watchers(base: string, count: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const received = new Map<string, { version: string; times: number[] }>();
  let connected = 0;
  const open = (i: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = request(`${base}/v1/watch?sidecar=sim-${i}`, { agent, headers: { accept: 'text/event-stream' } }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`watch ${i}: HTTP ${res.statusCode}`));
        connected++;
        resolve();
        const dec = new SseDecoder();
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          for (const ev of dec.push(chunk)) {
            if (ev.event !== 'snapshot' || !ev.id) continue;
            const at = now();
            let r = received.get(ev.id);
            if (!r) {
              r = { version: (JSON.parse(ev.data) as { version: string }).version, times: [] };
              received.set(ev.id, r);
            }
            r.times.push(at);
            if (r.times.length === count) {
              process.send!({ kind: 'round', version: r.version, times: r.times });
              received.delete(ev.id);
            }
          }
        });
      });
      req.once('error', reject);
      req.end();
    });
  // Open in batches so the accept queue is not the thing being measured.
  for (let i = 0; i < count; i += 100) await Promise.all(Array.from({ length: Math.min(100, count - i) }, (_, k) => open(i + k)));
  process.send!({ kind: 'connected', connected });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------- main
interface Proc {
  child: ChildProcess;
  logs: Array<Record<string, unknown>>;
  /** Called for each new log line (event-driven waits: polling would steal CPU from what is measured). */
  onLog?: (l: Record<string, unknown>) => void;
}

function spawnLogged(args: string[], nodeArgs: string[] = []): Proc {
  const child = spawn(process.execPath, [...nodeArgs, MESHLET, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  const proc: Proc = { child, logs };
  let partial = '';
  child.stdout!.on('data', (c: Buffer) => {
    const parts = (partial + c.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const l of parts) {
      if (!l.startsWith('{')) continue;
      const line = JSON.parse(l) as Record<string, unknown>;
      logs.push(line);
      proc.onLog?.(line);
    }
  });
  child.stderr!.on('data', (c: Buffer) => process.stderr.write(c));
  return proc;
}

function configYaml(services: number, round: number): string {
  let y = 'services:\n';
  for (let s = 0; s < services; s++) {
    // Round r moves service 0 to another port: one small change per PUT, like a real edit.
    const port = s === 0 ? 20000 + round : 10000 + s;
    y += `  svc-${s}:\n    loadBalancer: least-request\n    timeout: 2s\n    retry: { attempts: 3, perTryTimeout: 500ms, on: [connect-failure, gateway-error] }\n    endpoints:\n      - { address: 127.0.0.1:${port}, labels: { version: v1 } }\n      - { address: 127.0.0.1:${port + 1000}, labels: { version: v2 } }\n`;
  }
  return y;
}

async function put(base: string, body: string): Promise<number> {
  const res = await fetch(`${base}/v1/config`, { method: 'PUT', body });
  if (res.status !== 201) throw new Error(`PUT /v1/config: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { version: number }).version;
}

/** utime+stime of a process in ms (/proc/PID/stat fields 14 and 15, in clock ticks of 10 ms). */
const cpuMs = (pid: number): number => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};
const rssKiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(q * s.length) - 1)]!;
}
const f1 = (x: number): string => x.toFixed(1);

async function main(): Promise<void> {
  const nSidecars = Number(opt.sidecars);
  const nWatchers = Number(opt.watchers);
  const rounds = Number(opt.rounds);
  const services = Number(opt.services);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshlet-bench-push-'));
  const cp = spawnLogged(['control-plane', '--data-dir', path.join(dir, 'cp'), '--listen', '127.0.0.1:0', '--instance-ttl', '60s', '--history-limit', '1000'], opt.profile ? ['--cpu-prof', '--cpu-prof-dir', opt.profile] : []);
  const listening = await waitFor(() => cp.logs.find((l) => l.msg === 'listening'), { timeoutMs: 30_000 });
  const base = `http://${String(listening.address)}`;
  let round = 0;
  await put(base, configYaml(services, round++));
  const snapshotBytes = (await (await fetch(`${base}/v1/config`)).text()).length;
  const out: string[] = [];
  out.push(`load average at start: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} (the machine is shared; wall-clock figures include waiting for a CPU)`);
  // The PUT itself: validate, two durable writes (version file + CURRENT, each fsync + rename + dir fsync).
  const putMs: number[] = [];
  out.push(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, node ${process.version}; ${services} services in the config (~${(snapshotBytes / 1024).toFixed(1)} KiB config JSON); ${rounds} PUTs per case`);

  // (a) real sidecars: until each has applied the version.
  if (nSidecars > 0) {
    const sidecars = Array.from({ length: nSidecars }, (_, i) =>
      spawnLogged(['sidecar', '--service', 'web', '--id', `web-${i}`, '--outbound', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--control-plane', base, '--data-dir', path.join(dir, `s${i}`), '--access-log', 'off']),
    );
    const appliedVersion = (p: Proc, v: number): Record<string, unknown> | undefined => p.logs.find((l) => l.msg === 'snapshot applied' && l.version === String(v));
    await waitFor(() => sidecars.every((s) => appliedVersion(s, 1)), { timeoutMs: 120_000, what: 'sidecars up' });
    const all: number[] = [];
    const slowest: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = Date.now();
      const v = await put(base, configYaml(services, round++));
      putMs.push(Date.now() - t0);
      const lines = await Promise.all(
        sidecars.map(
          (s) =>
            new Promise<Record<string, unknown>>((resolve) => {
              const seen = appliedVersion(s, v);
              if (seen) return resolve(seen);
              s.onLog = (l) => {
                if (l.msg === 'snapshot applied' && l.version === String(v)) resolve(l);
              };
            }),
        ),
      );
      // Log times are ms-resolution wall clock from each sidecar.
      const lat = lines.map((l) => Date.parse(String(l.time)) - t0);
      all.push(...lat);
      slowest.push(Math.max(...lat));
    }
    out.push(`${nSidecars} real sidecars (PUT → applied, from their log times, ms resolution): p50 ${f1(pct(all, 0.5))} ms, p99 ${f1(pct(all, 0.99))} ms; slowest sidecar per PUT: p50 ${f1(pct(slowest, 0.5))} ms, max ${f1(Math.max(...slowest))} ms`);
    for (const s of sidecars) s.child.kill('SIGTERM');
    await Promise.all(sidecars.map((s) => new Promise((r) => (s.child.exitCode !== null ? r(null) : s.child.once('exit', r)))));
  }

  // (b) simulated watchers in a separate process: until each has received it.
  if (nWatchers > 0) {
    // Let the sidecars' sessions go and the heap settle before the baseline.
    await waitFor(async () => ((await (await fetch(`${base}/v1/health`)).json()) as { watchers: number }).watchers === 0, { timeoutMs: 30_000 });
    const rssBefore = rssKiB(cp.child.pid!);
    const child = spawn(process.execPath, ['--import', 'tsx', SELF, '--role', 'watchers', '--url', base, '--watchers', String(nWatchers)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: ROOT });
    type Message = { kind: string; version?: string; times?: number[]; connected?: number };
    const messages: Message[] = [];
    const waiters = new Map<string, (m: Message) => void>();
    child.on('message', (raw) => {
      const m = raw as Message;
      messages.push(m);
      if (m.version !== undefined) waiters.get(m.version)?.(m);
    });
    const roundDone = (version: string): Promise<Message> =>
      new Promise((resolve) => {
        const seen = messages.find((x) => x.kind === 'round' && x.version === version);
        if (seen) resolve(seen);
        else waiters.set(version, resolve);
      });
    await waitFor(() => messages.find((m) => m.kind === 'connected'), { timeoutMs: 120_000, what: 'watchers connected' });
    // Every watcher got the current snapshot on connect; one warm-up push, not counted.
    const warm = await put(base, configYaml(services, round++));
    await waitFor(() => messages.find((m) => m.kind === 'round' && m.version === String(warm)), { timeoutMs: 30_000 });
    const rssAfter = rssKiB(cp.child.pid!);
    const all: number[] = [];
    const slowest: number[] = [];
    const fromAck: number[] = [];
    const cpuBefore = cpuMs(cp.child.pid!);
    for (let r = 0; r < rounds; r++) {
      const t0 = now();
      const v = await put(base, configYaml(services, round++));
      const acked = now();
      putMs.push(acked - t0);
      const m = await roundDone(String(v));
      const lat = m.times!.map((t) => t - t0);
      all.push(...lat);
      slowest.push(Math.max(...lat));
      fromAck.push(...m.times!.map((t) => t - acked));
    }
    out.push(`${nWatchers} simulated SSE watchers (PUT sent → received): p50 ${f1(pct(all, 0.5))} ms, p99 ${f1(pct(all, 0.99))} ms; slowest watcher per PUT: p50 ${f1(pct(slowest, 0.5))} ms, max ${f1(Math.max(...slowest))} ms`);
    const cpuPerPut = (cpuMs(cp.child.pid!) - cpuBefore) / rounds;
    out.push(`${nWatchers} simulated SSE watchers (PUT answered → received, i.e. generate + fan-out only): p50 ${f1(pct(fromAck, 0.5))} ms, p99 ${f1(pct(fromAck, 0.99))} ms`);
    out.push(`control-plane CPU per PUT with ${nWatchers} watchers (validate, durable write, generate, hash, fan-out; /proc utime+stime, 10 ms ticks): ${f1(cpuPerPut)} ms`);
    out.push(`control-plane RSS: ${(rssBefore / 1024).toFixed(1)} MiB before, ${(rssAfter / 1024).toFixed(1)} MiB with ${nWatchers} watchers connected and one push done → ${((rssAfter - rssBefore) / nWatchers).toFixed(1)} KiB per watcher`);
    child.disconnect();
    child.kill('SIGTERM');
  }

  out.push(`PUT /v1/config answered (durable) after: p50 ${f1(pct(putMs, 0.5))} ms, p99 ${f1(pct(putMs, 0.99))} ms (included in the figures above)`);
  cp.child.kill('SIGTERM');
  await new Promise((r) => cp.child.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
  console.log(out.map((l) => `- ${l}`).join('\n'));
}

// Dispatched last: the helpers above are const and must be initialized first.
if (opt.role === 'watchers') await watchers(opt.url!, Number(opt.watchers));
else await main();
