// `meshlet ctl stat [SERVICE]`: success rate, requests per second and p50/p95/p99 latency per
// service and route, across every sidecar, like `linkerd viz stat`. Two samples of every sidecar's
// cumulative counters, an --interval apart, give the figures; -w keeps sampling and reprints.
// The samples come from the control plane (GET /v1/stats, which reads the sidecars' /metrics), or,
// for standalone sidecars without a control plane, straight from --sidecars ADMIN[,ADMIN…].
import { stringify as toYaml } from 'yaml';
import type { Argv, CommandModule } from 'yargs';
import { parseHostPort } from '../core/address.js';
import { parseDuration } from '../core/duration.js';
import { scrapeSidecars, statRows, type StatRow, type TrafficSample } from '../core/telemetry/traffic-stats.js';
import { CtlApi, CtlError, EXIT } from './ctl-api.js';
import type { CtlArgs } from './ctl.js';
import { formatTable } from './ctl-table.js';

interface StatArgs extends CtlArgs {
  service?: string;
  interval: string;
  watch: boolean;
  count?: number;
  direction: 'all' | 'inbound' | 'outbound';
  sidecars?: string;
}

export interface StatReport {
  /** Seconds between the two samples. */
  interval: number;
  /** When the second sample was taken, ISO 8601. */
  at: string;
  rows: StatRow[];
  /** Sidecars that did not answer the second sample. */
  unreachable: Array<{ id: string; adminAddress: string; error: string }>;
}

const pct = (r: number | null): string | null => (r === null ? null : `${(r * 100).toFixed(2)}%`);
const latency = (s: number | null): string | null => {
  if (s === null) return null;
  const ms = s * 1000;
  return `${ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0)}ms`;
};

export function formatStatTable(report: StatReport): string {
  const table = formatTable(
    ['SERVICE', 'ROUTE', 'DIRECTION', 'SUCCESS', 'RPS', 'LATENCY_P50', 'LATENCY_P95', 'LATENCY_P99', 'SIDECARS'],
    report.rows.map((r) => [r.service, r.route, r.direction, pct(r.successRate), r.rps.toFixed(1), latency(r.p50), latency(r.p95), latency(r.p99), r.sidecars]),
  );
  const notes = report.unreachable.map((u) => `(sidecar ${u.id === u.adminAddress ? '' : `${u.id} `}at ${u.adminAddress} did not answer: ${u.error})`);
  return [report.rows.length === 0 ? `no requests seen in the last ${report.interval.toFixed(1)}s` : table, ...notes].join('\n');
}

export function makeReport(prev: TrafficSample, cur: TrafficSample, filter: { service?: string; direction: StatArgs['direction'] }): StatReport {
  const rows = statRows(prev, cur).filter((r) => (filter.service === undefined || r.service === filter.service) && (filter.direction === 'all' || r.direction === filter.direction));
  return {
    interval: (cur.at - prev.at) / 1000,
    at: new Date(cur.at).toISOString(),
    rows,
    unreachable: cur.sidecars.filter((s) => !s.ok).map((s) => ({ id: s.id, adminAddress: s.adminAddress, error: s.error ?? 'unknown' })),
  };
}

function sampler(args: StatArgs): () => Promise<TrafficSample> {
  if (args.sidecars !== undefined) {
    const targets = args.sidecars
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean)
      .map((a) => {
        if (!parseHostPort(a)) throw new CtlError(`--sidecars: expected admin addresses HOST:PORT[,HOST:PORT…], got "${a}"`, EXIT.usage);
        return { id: a, service: null, adminAddress: a };
      });
    if (targets.length === 0) throw new CtlError('--sidecars: give at least one admin address HOST:PORT', EXIT.usage);
    return () => scrapeSidecars(targets, { timeoutMs: args.timeout });
  }
  const api = new CtlApi({ baseUrl: args['control-plane'], token: args.token, timeoutMs: args.timeout });
  return () => api.call<TrafficSample>('GET', '/v1/stats');
}

async function run(args: StatArgs): Promise<void> {
  const intervalMs = parseDuration(/^\d+$/.test(args.interval) ? Number(args.interval) : args.interval);
  if (intervalMs === undefined || intervalMs < 100 || intervalMs > 3_600_000) throw new CtlError(`--interval: expected a duration from 100ms to 1h such as "2s", got "${args.interval}"`, EXIT.usage);
  if (args.count !== undefined && (!Number.isInteger(args.count) || args.count < 1)) throw new CtlError(`--count: expected a whole number ≥ 1, got "${args.count}"`, EXIT.usage);
  const sample = sampler(args);
  const tty = process.stdout.isTTY === true && args.output === 'table';
  const stopAfter = args.watch ? (args.count ?? Infinity) : 1;
  let stopped = false;
  const onSigint = (): void => {
    stopped = true;
  };
  process.once('SIGINT', onSigint);
  try {
    let prev = await sample();
    // Tells a person why nothing shows yet (and scripts when the first sample was taken).
    process.stderr.write(`sampled ${prev.sidecars.length} sidecar${prev.sidecars.length === 1 ? '' : 's'}; next sample in ${intervalMs / 1000}s\n`);
    for (let printed = 0; printed < stopAfter && !stopped; printed++) {
      // The measurement interval itself: rates are counts over this span.
      await new Promise((r) => setTimeout(r, intervalMs));
      const cur = await sample();
      const report = makeReport(prev, cur, { service: args.service, direction: args.direction });
      prev = cur;
      if (args.output === 'json') console.log(JSON.stringify(report, null, args.watch ? undefined : 2));
      else if (args.output === 'yaml') process.stdout.write(`${args.watch ? '---\n' : ''}${toYaml(report)}`);
      else if (tty && args.watch) process.stdout.write(`\x1b[2J\x1b[H${report.at}  (every ${report.interval.toFixed(1)}s, Ctrl-C to stop)\n${formatStatTable(report)}\n`);
      else console.log(args.watch ? `${report.at}\n${formatStatTable(report)}\n` : formatStatTable(report));
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

export const ctlStatCommand: CommandModule = {
  command: 'stat [service]',
  describe: 'Live success rate, requests per second and p50/p95/p99 latency per service and route, across sidecars',
  builder: (y: Argv) =>
    y
      .positional('service', { type: 'string', describe: 'Only this service' })
      .option('interval', { type: 'string', default: '2s', describe: 'Time between the two samples (and between refreshes with -w)' })
      .option('watch', { alias: 'w', type: 'boolean', default: false, describe: 'Keep refreshing (plain lines when stdout is not a terminal; JSON lines with -o json)' })
      .option('count', { type: 'number', describe: 'With -w: stop after this many refreshes' })
      .option('direction', { choices: ['all', 'inbound', 'outbound'] as const, default: 'all' as const, describe: 'outbound: as callers saw it; inbound: as the called services saw it' })
      .option('sidecars', { type: 'string', describe: 'Read these sidecar admin addresses HOST:PORT[,…] directly instead of asking the control plane' }),
  handler: async (argv) => {
    try {
      await run(argv as unknown as StatArgs);
    } catch (e) {
      console.error(`meshlet ctl stat: ${(e as Error).message}`);
      process.exitCode = e instanceof CtlError ? e.exitCode : EXIT.refused;
    }
  },
};
