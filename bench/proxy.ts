// Data-plane benchmark: meshlet's outbound path (least-request balancer over two endpoints, retries
// with a per-try timeout, circuit breaker) side by side with a direct connection, node-http-proxy,
// @fastify/http-proxy and nginx (when installed), in interleaved rounds so drift on a noisy machine
// hits every target alike. Per target: requests/s and p50/p99 at 32 connections and at 1, the
// proxy's CPU time per request (utime+stime from /proc/PID/stat over the run) and its peak RSS
// (VmHWM). Every process is its own: upstream, each proxy, the load generator.
//
//   npx tsc && npx tsx bench/proxy.ts [--rounds 3] [--duration 5] [--warmup 3]
//                                     [--loadgen wrk|autocannon] [--targets a,b] [--json FILE]
//                                     [--instructions PASSES] (callgrind's instructions per request
//                                     of each Node proxy, bench/instructions.ts: steady where time is not)
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MESHLET_NODE_ENV, MESHLET_NODE_FLAGS } from '../core/node-flags.js';
import { waitFor } from '../test/harness/wait.js';
import { BenchChild, chooseLoadGen, clockTickUs, compileBench, median, processCpuUs, runLoad as runLoadGen, which, type LoadGen, type LoadResult } from './bench-child.js';
import { countInstructions, INSTRUCTION_LOAD, instructionsUnavailable, instructionTitle, summarizeCounts, type InstructionCount, type InstructionTarget } from './instructions.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');
const HOST = 'bench'; // the mesh service name; every target gets the same Host header
const CONCURRENCIES = [32, 1] as const;
const WARMUP_REQUESTS = 30_000;
const WARMUP_MAX_RUNS = 6;
const TARGET_NAMES = ['direct', 'meshlet', 'meshlet+log', 'undici-bare', 'http-proxy', 'fastify-proxy', 'nginx'] as const;
type TargetName = (typeof TARGET_NAMES)[number];
/** The proxies that are Node processes (counted under callgrind too). */
type NodeTargetName = Exclude<TargetName, 'direct' | 'nginx'>;
const LABELS: Record<TargetName, string> = {
  direct: 'direct (no proxy)',
  meshlet: 'meshlet (--access-log off)',
  'meshlet+log': 'meshlet (default: access log to stdout→file)',
  'undici-bare': 'bare node:http + undici dispatch (no features)',
  'http-proxy': 'node-http-proxy (keep-alive agent)',
  'fastify-proxy': '@fastify/http-proxy',
  nginx: 'nginx (1 worker, upstream keepalive)',
};

interface Options {
  rounds: number;
  durationS: number;
  warmupS: number;
  loadgen: LoadGen;
  targets: TargetName[];
  json: string | undefined;
  /** Passes of callgrind's instruction count per proxy (0: none). */
  instructions: number;
}

interface Target {
  name: TargetName;
  label: string;
  address: string;
  /** The proxy process whose CPU and memory are accounted; undefined for the direct connection. */
  pid: number | undefined;
}

interface Sample extends LoadResult {
  target: TargetName;
  round: number;
  connections: number;
  cpuUsPerReq: number | undefined;
}

const runLoad = (opts: Options, address: string, connections: number, seconds: number): Promise<LoadResult> => runLoadGen(opts.loadgen, address, HOST, connections, seconds);

function fail(msg: string): never {
  process.stderr.write(`bench/proxy: ${msg}\n`);
  process.exit(2);
}

function parseOptions(): Options {
  let v;
  try {
    v = parseArgs({
      options: {
        rounds: { type: 'string', default: '3' },
        duration: { type: 'string', default: '5' },
        warmup: { type: 'string', default: '3' },
        loadgen: { type: 'string' },
        targets: { type: 'string' },
        json: { type: 'string' },
        instructions: { type: 'string', default: '0' },
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
  const loadgen = chooseLoadGen(v.loadgen);
  if (loadgen instanceof Error) fail(loadgen.message);
  const targets = (v.targets?.split(',').map((s) => s.trim()) ?? [...TARGET_NAMES]) as TargetName[];
  for (const t of targets) if (!TARGET_NAMES.includes(t)) fail(`--targets: unknown target ${JSON.stringify(t)} (known: ${TARGET_NAMES.join(', ')})`);
  if (!targets.includes('direct')) targets.unshift('direct'); // added latency is measured against it
  if (v.instructions !== '0') {
    const why = instructionsUnavailable();
    if (why !== undefined) fail(`--instructions: ${why}`);
  }
  return {
    rounds: int('rounds', v.rounds!, 1, 20),
    durationS: int('duration', v.duration!, 1, 60),
    warmupS: int('warmup', v.warmup!, 0, 30),
    loadgen,
    targets,
    json: v.json,
    instructions: int('instructions', v.instructions!, 0, 5),
  };
}


/** Private (anonymous) and file-backed resident memory now, in MB (/proc/PID/status RssAnon, RssFile). */
function rssPartsMb(pid: number): { anon: number; file: number } {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(st)?.[1] ?? NaN);
  return { anon: kb('RssAnon') / 1024, file: kb('RssFile') / 1024 };
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Runs the load generator in its own process; killed if it overruns its duration by 20 s. */
/** One request through the target must come back 200 with the upstream's body: proof it really proxies. */
async function checkForwards(t: Target, expected: string): Promise<void> {
  // node:http rather than fetch: fetch may not set Host, and Host is what names the mesh service.
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.get(`http://${t.address}/check`, { headers: { host: HOST }, agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
  });
  if (status !== 200 || body !== expected) throw new Error(`${t.label} at ${t.address} answered ${status} ${body.slice(0, 200)}`);
}

function meshYaml(endpoints: string[]): string {
  return [
    'apiVersion: meshlet/v1',
    'services:',
    `  ${HOST}:`,
    '    endpoints:',
    ...endpoints.map((a) => `      - { address: ${a} }`),
    '    loadBalancer: least-request',
    '    timeout: 10s',
    '    retry: { attempts: 3, perTryTimeout: 5s, on: [connect-failure, reset, gateway-error] }',
    '    circuitBreaker: { consecutiveFailures: 5, failureRate: { threshold: 0.5, window: 10s, minRequests: 20 } }',
    '',
  ].join('\n');
}

function nginxConf(dir: string, port: number, upstream: string): string {
  return `worker_processes 1;
master_process off;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  upstream bench { server ${upstream}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://bench;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`;
}

function fmt(n: number | undefined, digits = 0): string {
  return n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits);
}

async function main(): Promise<void> {
  const opts = parseOptions();
  if (!existsSync(path.join(DIST, 'cli/meshlet.js'))) fail('dist/cli/meshlet.js is missing: run `npx tsc` first');
  // The peers and the upstream run as plain JS: tsx's loader alone would add ~40 MB to a peer's RSS.
  const compileError = compileBench();
  if (compileError !== undefined) fail(compileError);
  const tickUs = clockTickUs();

  const t0 = performance.now();
  const loadAtStart = os.loadavg().map((l) => l.toFixed(1)).join(' ');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshlet-bench-'));
  const children: BenchChild[] = [];
  const start = (name: string, cmd: string, args: string[], env?: Readonly<Record<string, string>>): BenchChild => {
    const c = new BenchChild(name, dir, cmd, args, env);
    children.push(c);
    return c;
  };
  const cleanup = async (): Promise<void> => {
    await Promise.all(children.map((c) => c.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

  try {
    const upstream = start('upstream', process.execPath, [path.join(DIST, 'bench/upstream.js'), '2']);
    const ups = [...(await upstream.listening('upstream-0', 'upstream-1')).values()];
    const upstreamBody = await (await fetch(`http://${ups[0]}/`)).text();
    const meshFile = path.join(dir, 'mesh.yaml');
    writeFileSync(meshFile, meshYaml(ups));

    // How each Node proxy is started: for the timed rounds, and again under callgrind (--instructions).
    const nodeTarget = (name: NodeTargetName, instance: string): InstructionTarget =>
      name === 'meshlet' || name === 'meshlet+log'
        ? {
            name: `${name}${instance}`,
            command: process.execPath,
            // The node flags the meshlet executable runs with (its shebang, the image's ENTRYPOINT).
            args: [
              ...MESHLET_NODE_FLAGS,
              path.join(DIST, 'cli/meshlet.js'), 'sidecar', '--service', 'bench-client', '--config', meshFile,
              '--outbound', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--data-dir', path.join(dir, `data-${name}${instance}`), '--access-log', name === 'meshlet' ? 'off' : 'stdout',
            ],
            env: MESHLET_NODE_ENV,
            listener: 'outbound',
          }
        : { name: `${name}${instance}`, command: process.execPath, args: [path.join(DIST, `bench/peers/${name}.js`), `http://${ups[0]}`], listener: name };
    const targets: Target[] = [];
    for (const name of opts.targets) {
      if (name === 'direct') targets.push({ name, label: LABELS.direct, address: ups[0]!, pid: undefined });
      else if (name !== 'nginx') {
        const spec = nodeTarget(name, '');
        const c = start(spec.name, spec.command, spec.args, spec.env);
        const addr = (await c.listening(spec.listener)).get(spec.listener)!;
        targets.push({ name, label: LABELS[name], address: addr, pid: c.pid });
      } else if (name === 'nginx') {
        const bin = which('nginx');
        if (!bin) {
          process.stderr.write('nginx is not installed: skipping it (apt-get install -y nginx-light to include it)\n');
          continue;
        }
        const port = await freePort();
        writeFileSync(path.join(dir, 'nginx.conf'), nginxConf(dir, port, ups[0]!));
        const c = start('nginx', bin, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'nginx-error.log')]);
        const t: Target = { name, label: LABELS.nginx, address: `127.0.0.1:${port}`, pid: c.pid };
        await waitFor(() => checkForwards(t, upstreamBody).then(() => true), { timeoutMs: 10_000, what: 'nginx to answer' });
        targets.push(t);
      }
    }
    for (const t of targets) await checkForwards(t, upstreamBody);
    process.stderr.write(`${targets.length} targets up in ${fmt(performance.now() - t0)} ms\n`);

    process.stderr.write(`targets ready; loadgen ${opts.loadgen}; warm-up ${opts.warmupS}s each; ${opts.rounds} rounds × ${targets.length} targets × c=${CONCURRENCIES.join(',')} × ${opts.durationS}s\n`);
    // JIT warm-up is counted in requests, not seconds: on a loaded machine a proxy with a longer hot
    // path (meshlet) may get only a few hundred requests in a few seconds and still be compiling in
    // round 1. Bounded: at most WARMUP_MAX_RUNS runs of --warmup seconds per target.
    if (opts.warmupS > 0) {
      for (const t of targets) {
        let done = 0;
        for (let run = 0; run < WARMUP_MAX_RUNS && done < WARMUP_REQUESTS; run++) done += (await runLoad(opts, t.address, 32, opts.warmupS)).requests;
        process.stderr.write(`  warm-up ${t.name}: ${done} requests\n`);
      }
    }

    // VmHWM is the kernel's peak of RSS, which counts the node binary's file-backed pages too
    // (shared with every other Node process); the private part's peak is sampled every 50 ms.
    const peakAnon = new Map<TargetName, { anon: number; file: number }>();
    const sampleMemory = (): void => {
      for (const t of targets) {
        if (t.pid === undefined) continue;
        try {
          const m = rssPartsMb(t.pid);
          const p = peakAnon.get(t.name);
          if (p === undefined || m.anon > p.anon) peakAnon.set(t.name, m);
        } catch {
          // exited; its figures stay as last sampled
        }
      }
    };
    const memoryTimer = setInterval(sampleMemory, 50);
    const samples: Sample[] = [];
    for (let round = 0; round < opts.rounds; round++) {
      for (const connections of CONCURRENCIES) {
        // Rotate the order each round so no target always runs first or last.
        const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
        for (const t of order) {
          const before = t.pid === undefined ? 0 : processCpuUs(t.pid, tickUs);
          const r = await runLoad(opts, t.address, connections, opts.durationS);
          const cpu = t.pid === undefined ? undefined : (processCpuUs(t.pid, tickUs) - before) / Math.max(1, r.requests);
          samples.push({ ...r, target: t.name, round, connections, cpuUsPerReq: cpu });
          process.stderr.write(`  round ${round + 1} c=${connections} ${t.name.padEnd(13)} ${fmt(r.requests / r.durationS).padStart(6)} req/s  p50 ${r.p50Us}µs  p99 ${r.p99Us}µs  cpu ${fmt(cpu, 1)}µs/req${r.errors + r.non2xx ? `  ERRORS ${r.errors} non2xx ${r.non2xx}` : ''}\n`);
        }
      }
    }
    clearInterval(memoryTimer);
    sampleMemory();
    const rss = new Map(targets.map((t) => [t.name, t.pid === undefined ? undefined : peakRssMb(t.pid)]));

    const pick = (name: TargetName, c: number): Sample[] => samples.filter((s) => s.target === name && s.connections === c);
    const direct1 = pick('direct', 1);
    const rows = targets.map((t) => {
      const s32 = pick(t.name, 32);
      const s1 = pick(t.name, 1);
      // Added latency per round against the direct run of that same round, then the median.
      const added = s1.map((s) => s.p50Us - (direct1.find((d) => d.round === s.round)?.p50Us ?? NaN));
      return {
        target: t.name,
        label: t.label,
        rps32: median(s32.map((s) => s.requests / s.durationS)),
        p50_32: median(s32.map((s) => s.p50Us)),
        p99_32: median(s32.map((s) => s.p99Us)),
        rps1: median(s1.map((s) => s.requests / s.durationS)),
        p50_1: median(s1.map((s) => s.p50Us)),
        p99_1: median(s1.map((s) => s.p99Us)),
        addedP50_1: t.pid === undefined ? undefined : median(added),
        cpu32: t.pid === undefined ? undefined : median(s32.map((s) => s.cpuUsPerReq!)),
        cpu1: t.pid === undefined ? undefined : median(s1.map((s) => s.cpuUsPerReq!)),
        peakRssMb: rss.get(t.name),
        peakAnonMb: peakAnon.get(t.name)?.anon,
        fileMbAtPeak: peakAnon.get(t.name)?.file,
        failed: [...s32, ...s1].reduce((n, s) => n + s.errors + s.non2xx, 0),
      };
    });

    const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
    const cpuInfo = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
    const lines = [
      `${new Date().toISOString()} · Node ${process.version} · ${os.cpus().length}× ${cpuInfo} · loadgen ${opts.loadgen} · ${opts.rounds} rounds × ${opts.durationS}s, interleaved · medians over rounds · load average at start ${loadAtStart}, at end ${load}`,
      '',
      '| target | req/s @32 | p50 @32 | p99 @32 | req/s @1 | p50 @1 | p99 @1 | added p50 @1 | CPU/req @32 | CPU/req @1 | peak RSS | peak private (file-backed then) | failed |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...rows.map(
        (r) =>
          `| ${r.label} | ${fmt(r.rps32)} | ${fmt(r.p50_32)} µs | ${fmt(r.p99_32)} µs | ${fmt(r.rps1)} | ${fmt(r.p50_1)} µs | ${fmt(r.p99_1)} µs | ${r.addedP50_1 === undefined ? '–' : `${fmt(r.addedP50_1)} µs`} | ${r.cpu32 === undefined ? '–' : `${fmt(r.cpu32, 1)} µs`} | ${r.cpu1 === undefined ? '–' : `${fmt(r.cpu1, 1)} µs`} | ${r.peakRssMb === undefined ? '–' : `${fmt(r.peakRssMb, 1)} MB`} | ${r.peakAnonMb === undefined ? '–' : `${fmt(r.peakAnonMb, 1)} MB (${fmt(r.fileMbAtPeak, 1)} MB)`} | ${r.failed} |`,
      ),
    ];
    const m = rows.find((r) => r.target === 'meshlet');
    const hp = rows.find((r) => r.target === 'http-proxy');
    const fp = rows.find((r) => r.target === 'fastify-proxy');
    if (m) {
      lines.push('', 'Targets (meshlet, access log off):');
      // Per-round ratios as well: on a shared machine the load moves every target between rounds,
      // and a ratio within one round cancels much of that.
      const roundRatio = (other: TargetName): number =>
        median(pick('meshlet', 32).map((s) => s.cpuUsPerReq! / (pick(other, 32).find((o) => o.round === s.round)?.cpuUsPerReq ?? NaN)));
      if (hp) lines.push(`- CPU/req ≤ 0.6× node-http-proxy: ${fmt(m.cpu32, 1)} / ${fmt(hp.cpu32, 1)} = ${fmt(m.cpu32! / hp.cpu32!, 2)}× (median of per-round ratios ${fmt(roundRatio('http-proxy'), 2)}×) → ${m.cpu32! <= 0.6 * hp.cpu32! ? 'met' : 'MISSED'}`);
      if (fp) lines.push(`- CPU/req below @fastify/http-proxy: ${fmt(m.cpu32, 1)} vs ${fmt(fp.cpu32, 1)} µs (median of per-round ratios ${fmt(roundRatio('fastify-proxy'), 2)}×) → ${m.cpu32! < fp.cpu32! ? 'met' : 'MISSED'}`);
      lines.push(`- added p50 at 1 connection ≤ 80 µs: ${fmt(m.addedP50_1)} µs → ${m.addedP50_1! <= 80 ? 'met' : 'MISSED'}`);
      lines.push(`- peak RSS ≤ 80 MB: ${fmt(m.peakRssMb, 1)} MB → ${m.peakRssMb! <= 80 ? 'met' : 'MISSED'}`);
      const floor = rows.find((r) => r.target === 'undici-bare');
      if (floor) lines.push(`- against the bare node:http + undici floor: CPU/req ${fmt(m.cpu32! / floor.cpu32!, 2)}× (${fmt(m.cpu32, 1)} vs ${fmt(floor.cpu32, 1)} µs), peak RSS ${fmt(m.peakRssMb, 1)} vs ${fmt(floor.peakRssMb, 1)} MB`);
    }
    // Instructions per request: each Node proxy again, a new process under callgrind, passes interleaved.
    const counts: { target: TargetName; c: InstructionCount }[] = [];
    const counted = opts.targets.filter((t): t is NodeTargetName => t !== 'direct' && t !== 'nginx');
    for (let pass = 1; pass <= opts.instructions; pass++) {
      for (const name of counted) {
        const c = await countInstructions(nodeTarget(name, `-callgrind-${pass}`), { dir, host: HOST, ...INSTRUCTION_LOAD });
        counts.push({ target: name, c });
        process.stderr.write(`  instructions pass ${pass} ${name.padEnd(13)} main thread ${fmt(c.mainPerRequest / 1000, 1)}k/req, other threads ${fmt(c.otherPerRequest / 1000, 1)}k/req, failed ${c.failed}\n`);
      }
    }
    if (counts.length > 0) {
      const sum = new Map(counted.map((t) => [t, summarizeCounts(counts.filter((x) => x.target === t).map((x) => x.c))]));
      const has = (t: NodeTargetName): boolean => sum.has(t);
      lines.push('', instructionTitle(opts.instructions, 'proxy'), '');
      lines.push(`| target | main thread / request | every pass | other threads / request |${has('http-proxy') ? ' ÷ node-http-proxy |' : ''}${has('fastify-proxy') ? ' ÷ @fastify/http-proxy |' : ''}${has('undici-bare') ? ' ÷ bare undici |' : ''} failed |`);
      lines.push(`|---|---:|---|---:|${has('http-proxy') ? '---:|' : ''}${has('fastify-proxy') ? '---:|' : ''}${has('undici-bare') ? '---:|' : ''}---:|`);
      for (const t of counted) {
        const x = sum.get(t)!;
        const vs = (o: NodeTargetName): string => (has(o) ? ` ${fmt(x.main / sum.get(o)!.main, 2)}× |` : '');
        lines.push(`| ${LABELS[t]} | ${fmt(x.main / 1000, 1)}k | ${x.passes.map((m) => `${fmt(m / 1000, 1)}k`).join(', ')} | ${fmt(x.other / 1000, 1)}k |${vs('http-proxy')}${vs('fastify-proxy')}${vs('undici-bare')} ${x.failed} |`);
      }
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    if (opts.json) writeFileSync(opts.json, JSON.stringify({ options: opts, rows, samples, instructions: counts }, null, 2));
  } finally {
    await cleanup();
  }
}

await main();
