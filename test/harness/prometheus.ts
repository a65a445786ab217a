// A real Prometheus server (Debian's `prometheus` package, installed by scripts/install-deps.sh) for
// end-to-end tests: scrapes the given targets every second and answers PromQL over its HTTP API.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { spawnProcess, type Proc } from './process.js';
import { waitFor } from './wait.js';

export interface PromVectorItem {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusServer {
  readonly proc: Proc;
  /** 127.0.0.1:PORT of its web/API listener. */
  readonly address: string;
  /** Instant query; resolves with the result vector. */
  query(promql: string): Promise<PromVectorItem[]>;
  /** Scrape health of every target, by job. */
  targets(): Promise<Array<{ job: string; health: string; lastError: string; scrapeUrl: string }>>;
  stop(): Promise<void>;
}

/** A port that was free a moment ago (Prometheus cannot report the port it got for :0). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** `promtool check metrics` on an exposition: exit status and what it printed (empty when clean). */
export function promtoolCheckMetrics(exposition: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  if (r.error) throw new Error(`promtool not runnable (${r.error.message}); scripts/install-deps.sh installs Debian's prometheus package`);
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

/** Starts Prometheus scraping `jobs` (job name → host:port targets, path /metrics) every second. */
export async function startPrometheus(jobs: Record<string, string[]>): Promise<PrometheusServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshlet-prom-'));
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
    scrape_configs: Object.entries(jobs).map(([job, targets]) => ({ job_name: job, metrics_path: '/metrics', static_configs: [{ targets }] })),
  };
  writeFileSync(path.join(dir, 'prom.yml'), stringify(config));
  let lastError: unknown;
  for (let tries = 0; tries < 3; tries++) {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const proc = spawnProcess('prometheus', [
      `--config.file=${path.join(dir, 'prom.yml')}`,
      `--storage.tsdb.path=${path.join(dir, `data-${tries}`)}`,
      `--web.listen-address=${address}`,
      '--log.level=warn',
    ]);
    try {
      await waitFor(
        async () => {
          if (proc.child.exitCode !== null) throw new Error(`prometheus exited (${proc.child.exitCode}): ${proc.output().slice(-500)}`);
          const r = await fetch(`http://${address}/-/ready`);
          return r.status === 200;
        },
        { timeoutMs: 20_000, what: 'prometheus /-/ready' },
      );
    } catch (e) {
      lastError = e;
      await proc.stop('SIGKILL', 1_000);
      // The port was taken between freePort() and bind: try another.
      if (/address already in use/.test(proc.output())) continue;
      throw e;
    }
    const api = async <T>(p: string): Promise<T> => {
      const r = await fetch(`http://${address}${p}`);
      const body = (await r.json()) as { status: string; data: T; error?: string };
      if (body.status !== 'success') throw new Error(`prometheus ${p}: ${body.error ?? r.status}`);
      return body.data;
    };
    return {
      proc,
      address,
      query: async (promql) => (await api<{ resultType: string; result: PromVectorItem[] }>(`/api/v1/query?query=${encodeURIComponent(promql)}`)).result,
      targets: async () =>
        (await api<{ activeTargets: Array<{ labels: { job: string }; health: string; lastError: string; scrapeUrl: string }> }>('/api/v1/targets')).activeTargets.map((t) => ({
          job: t.labels.job,
          health: t.health,
          lastError: t.lastError,
          scrapeUrl: t.scrapeUrl,
        })),
      stop: async () => {
        await proc.stop('SIGTERM', 5_000);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  throw lastError;
}
