// The figures of `meshlet ctl stat` (like `linkerd viz stat`): per direction, service and route, the
// success rate, requests per second and p50/p95/p99 latency over an interval, across sidecars.
// A sample is every sidecar's cumulative counters and latency buckets read from its /metrics; two
// samples give the figures. Deltas are taken per sidecar (a restarted sidecar's counters start again
// from zero, which a sum over sidecars would hide) and only then added up; quantiles are interpolated
// inside the merged buckets as Prometheus' histogram_quantile() does.
import { parseExposition } from './exposition.js';

export interface TrafficSeries {
  direction: string;
  service: string;
  route: string;
  requests: number;
  /** Responses of class 5xx or none (no response): Linkerd's definition of a failure. */
  failures: number;
  /** Upper bounds (le) in seconds, ascending, +Inf last. */
  bounds: number[];
  /** Cumulative request counts per bound. */
  buckets: number[];
}

export interface SidecarTarget {
  id: string;
  service: string | null;
  adminAddress: string;
}

export interface SidecarTraffic extends SidecarTarget {
  /** Wall-clock ms when this sidecar was read. */
  at: number;
  ok: boolean;
  error?: string;
  series: TrafficSeries[];
}

export interface TrafficSample {
  at: number;
  sidecars: SidecarTraffic[];
}

export interface StatRow {
  direction: string;
  service: string;
  route: string;
  /** Requests seen in the interval. */
  requests: number;
  rps: number;
  /** 0..1, null without requests. */
  successRate: number | null;
  /** Seconds, null without requests. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
  /** Sidecars that reported this service/route. */
  sidecars: number;
}

const key = (s: { direction: string; service: string; route: string }): string => `${s.direction}\u0000${s.service}\u0000${s.route}`;

/** The request series of one sidecar's /metrics text. */
export function trafficFromExposition(text: string): TrafficSeries[] {
  const samples = parseExposition(text, (n) => n === 'meshlet_requests_total' || n === 'meshlet_request_duration_seconds_bucket');
  const byKey = new Map<string, TrafficSeries & { byLe: Map<number, number> }>();
  const get = (l: Record<string, string>) => {
    const k = key({ direction: l.direction ?? '', service: l.service ?? '', route: l.route ?? '' });
    let s = byKey.get(k);
    if (!s) {
      s = { direction: l.direction ?? '', service: l.service ?? '', route: l.route ?? '', requests: 0, failures: 0, bounds: [], buckets: [], byLe: new Map() };
      byKey.set(k, s);
    }
    return s;
  };
  for (const { name, labels, value } of samples) {
    const s = get(labels);
    if (name === 'meshlet_requests_total') {
      s.requests += value;
      if (labels.status_class === '5xx' || labels.status_class === 'none') s.failures += value;
    } else {
      const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
      s.byLe.set(le, (s.byLe.get(le) ?? 0) + value);
    }
  }
  return [...byKey.values()].map(({ byLe, ...s }) => {
    const bounds = [...byLe.keys()].sort((a, b) => a - b);
    return { ...s, bounds, buckets: bounds.map((b) => byLe.get(b)!) };
  });
}

/** Reads every sidecar's /metrics (at most `concurrency` at a time); a sidecar that fails is reported, not fatal. */
export async function scrapeSidecars(targets: readonly SidecarTarget[], opts: { timeoutMs?: number; concurrency?: number; now?: () => number } = {}): Promise<TrafficSample> {
  const now = opts.now ?? Date.now;
  const out: SidecarTraffic[] = new Array(targets.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < targets.length) {
      const i = next++;
      const t = targets[i]!;
      try {
        const res = await fetch(`http://${t.adminAddress}/metrics`, { signal: AbortSignal.timeout(opts.timeoutMs ?? 2_000) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const text = await res.text();
        out[i] = { ...t, at: now(), ok: true, series: trafficFromExposition(text) };
      } catch (e) {
        const cause = (e as { cause?: { code?: string } }).cause?.code;
        out[i] = { ...t, at: now(), ok: false, error: cause ?? (e as Error).message, series: [] };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 16, targets.length) }, worker));
  return { at: now(), sidecars: out };
}

/** The q-quantile (0..1) of cumulative bucket counts, interpolated linearly within the bucket (histogram_quantile). */
export function quantile(bounds: readonly number[], buckets: readonly number[], q: number): number | null {
  const total = buckets[buckets.length - 1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let i = buckets.findIndex((c) => c >= rank);
  if (i === -1) i = buckets.length - 1;
  const upper = bounds[i]!;
  // Beyond the largest finite bound: report that bound, as Prometheus does.
  if (upper === Infinity) return i > 0 ? bounds[i - 1]! : null;
  const lower = i === 0 ? 0 : bounds[i - 1]!;
  const below = i === 0 ? 0 : buckets[i - 1]!;
  const inBucket = buckets[i]! - below;
  return inBucket <= 0 ? upper : lower + ((upper - lower) * (rank - below)) / inBucket;
}

/** The figures between two samples, one row per direction/service/route, sorted. */
export function statRows(prev: TrafficSample, cur: TrafficSample): StatRow[] {
  const before = new Map(prev.sidecars.filter((s) => s.ok).map((s) => [s.id, s]));
  const rows = new Map<string, StatRow & { failures: number; bounds: number[]; buckets: number[] }>();
  for (const sc of cur.sidecars) {
    const old = sc.ok ? before.get(sc.id) : undefined;
    // A sidecar seen once has no interval yet.
    if (!old) continue;
    const dt = (sc.at - old.at) / 1000;
    if (!(dt > 0)) continue;
    const oldSeries = new Map(old.series.map((s) => [key(s), s]));
    for (const s of sc.series) {
      const o = oldSeries.get(key(s));
      // Counters that went down mean the sidecar restarted: everything now counted is new.
      const reset = o !== undefined && s.requests < o.requests;
      const base = o === undefined || reset ? undefined : o;
      const requests = s.requests - (base?.requests ?? 0);
      const failures = s.failures - (base?.failures ?? 0);
      let row = rows.get(key(s));
      if (!row) {
        row = { direction: s.direction, service: s.service, route: s.route, requests: 0, rps: 0, successRate: null, p50: null, p95: null, p99: null, sidecars: 0, failures: 0, bounds: s.bounds, buckets: s.bounds.map(() => 0) };
        rows.set(key(s), row);
      }
      row.sidecars++;
      row.requests += requests;
      row.rps += requests / dt;
      row.failures += failures;
      if (sameBounds(row.bounds, s.bounds)) {
        const ob = base && sameBounds(base.bounds, s.bounds) ? base.buckets : undefined;
        for (let i = 0; i < s.buckets.length; i++) row.buckets[i]! += s.buckets[i]! - (ob?.[i] ?? 0);
      }
    }
  }
  return [...rows.values()]
    .map(({ bounds, buckets, failures, ...r }) => {
      return {
        ...r,
        successRate: r.requests > 0 ? (r.requests - failures) / r.requests : null,
        p50: r.requests > 0 ? quantile(bounds, buckets, 0.5) : null,
        p95: r.requests > 0 ? quantile(bounds, buckets, 0.95) : null,
        p99: r.requests > 0 ? quantile(bounds, buckets, 0.99) : null,
      };
    })
    .sort((a, b) => a.direction.localeCompare(b.direction) || a.service.localeCompare(b.service) || a.route.localeCompare(b.route));
}

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
