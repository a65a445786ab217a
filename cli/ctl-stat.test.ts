import { describe, expect, it } from 'vitest';
import type { SidecarTraffic, TrafficSample } from '../core/telemetry/traffic-stats.js';
import { formatStatTable, makeReport } from './ctl-stat.js';

const BOUNDS = [0.001, 0.01, 0.1, Infinity];

function sc(id: string, at: number, series: Array<{ direction: string; service: string; route: string; requests: number; failures: number; buckets: number[] }>, ok = true): SidecarTraffic {
  return { id, service: 'orders', adminAddress: `127.0.0.1:${id.length}`, at, ok, ...(ok ? {} : { error: 'ECONNREFUSED' }), series: series.map((s) => ({ ...s, bounds: BOUNDS })) };
}

describe('makeReport and formatStatTable', () => {
  const prev: TrafficSample = { at: 1_000, sidecars: [sc('a', 1_000, [{ direction: 'outbound', service: 'users', route: 'r', requests: 0, failures: 0, buckets: [0, 0, 0, 0] }, { direction: 'inbound', service: 'orders', route: 'inbound', requests: 0, failures: 0, buckets: [0, 0, 0, 0] }])] };
  const cur: TrafficSample = {
    at: 3_000,
    sidecars: [
      sc('a', 3_000, [
        { direction: 'outbound', service: 'users', route: 'r', requests: 100, failures: 4, buckets: [50, 100, 100, 100] },
        { direction: 'inbound', service: 'orders', route: 'inbound', requests: 10, failures: 0, buckets: [10, 10, 10, 10] },
      ]),
      sc('b', 3_000, [], false),
    ],
  };

  it('filters by service and direction and names unreachable sidecars', () => {
    const all = makeReport(prev, cur, { direction: 'all' });
    expect(all.rows.map((r) => `${r.direction}/${r.service}`)).toEqual(['inbound/orders', 'outbound/users']);
    expect(all.interval).toBe(2);
    expect(all.unreachable).toEqual([{ id: 'b', adminAddress: '127.0.0.1:1', error: 'ECONNREFUSED' }]);
    expect(makeReport(prev, cur, { direction: 'outbound' }).rows).toHaveLength(1);
    expect(makeReport(prev, cur, { direction: 'all', service: 'orders' }).rows.map((r) => r.service)).toEqual(['orders']);
  });

  it('prints success as a percentage, RPS and latencies in ms', () => {
    const text = formatStatTable(makeReport(prev, cur, { direction: 'outbound' }));
    const [header, row, note] = text.split('\n');
    expect(header).toMatch(/^SERVICE\s+ROUTE\s+DIRECTION\s+SUCCESS\s+RPS\s+LATENCY_P50\s+LATENCY_P95\s+LATENCY_P99\s+SIDECARS$/);
    // 96 of 100 succeeded over 2 s; half the requests ≤ 1 ms, all ≤ 10 ms.
    expect(row!.split(/\s{2,}/)).toEqual(['users', 'r', 'outbound', '96.00%', '50.0', '1.00ms', '9.10ms', '9.82ms', '1']);
    expect(note).toBe('(sidecar b at 127.0.0.1:1 did not answer: ECONNREFUSED)');
  });

  it('says so when nothing was seen', () => {
    expect(formatStatTable(makeReport(prev, prev, { direction: 'all' }))).toMatch(/^no requests seen/);
  });
});
