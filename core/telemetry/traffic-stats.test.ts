import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { isMeshError } from '../errors.js';
import { parseExposition } from './exposition.js';
import { Registry, SidecarMetrics } from './metrics.js';
import { quantile, scrapeSidecars, statRows, trafficFromExposition, type SidecarTraffic, type TrafficSample } from './traffic-stats.js';

describe('parseExposition', () => {
  it('reads names, escaped label values and special values', () => {
    const s = parseExposition('# HELP x y\nx_total{a="q\\"uo\\\\te",b="n\\nl"} 3\nup 1\nh_bucket{le="+Inf"} +Inf\n');
    expect(s).toEqual([
      { name: 'x_total', labels: { a: 'q"uo\\te', b: 'n\nl' }, value: 3 },
      { name: 'up', labels: {}, value: 1 },
      { name: 'h_bucket', labels: { le: '+Inf' }, value: Infinity },
    ]);
  });

  it('names the line it cannot read', () => {
    let err: unknown;
    try {
      parseExposition('ok 1\nbroken{a="x} 1\n');
    } catch (e) {
      err = e;
    }
    expect(isMeshError(err, 'BAD_REQUEST')).toBe(true);
    expect((err as { details: { line: number } }).details.line).toBe(2);
  });
});

describe('quantile', () => {
  it('interpolates inside the bucket like histogram_quantile', () => {
    // 10 requests ≤ 0.1 s, 10 more ≤ 0.2 s.
    expect(quantile([0.1, 0.2, Infinity], [10, 20, 20], 0.5)).toBeCloseTo(0.1);
    expect(quantile([0.1, 0.2, Infinity], [10, 20, 20], 0.75)).toBeCloseTo(0.15);
    expect(quantile([0.1, 0.2, Infinity], [0, 0, 5], 0.5)).toBe(0.2); // all beyond the last bound
    expect(quantile([0.1, Infinity], [0, 0], 0.5)).toBeNull();
  });
});

/** A sidecar's exposition after a given mix of requests, produced by the real metrics code. */
async function exposition(mix: Array<{ route: string; status: number; ms: number; n: number }>): Promise<string> {
  const r = new Registry();
  const m = new SidecarMetrics(r);
  for (const x of mix) for (let i = 0; i < x.n; i++) m.request({ direction: 'outbound', service: 'users', route: x.route, backend: 'users', status: x.status, errorCode: x.status >= 500 ? 'UPSTREAM_RESET' : undefined, durationMs: x.ms, bytesIn: 0, bytesOut: 0 });
  return r.metrics();
}

function sidecar(id: string, at: number, text: string): SidecarTraffic {
  return { id, service: 'orders', adminAddress: 'x', at, ok: true, series: trafficFromExposition(text) };
}

describe('statRows', () => {
  it('gives rate, success and latency of the interval, summed over sidecars', async () => {
    const prev: TrafficSample = { at: 0, sidecars: [sidecar('a', 1000, await exposition([{ route: 'r', status: 200, ms: 3, n: 5 }])), sidecar('b', 1000, await exposition([]))] };
    const cur: TrafficSample = {
      at: 0,
      sidecars: [
        // a: 5 old + 15 new successes (3 ms) + 5 failures (3 ms); b: 20 successes at 40 ms. 2 s apart.
        sidecar('a', 3000, await exposition([{ route: 'r', status: 200, ms: 3, n: 20 }, { route: 'r', status: 503, ms: 3, n: 5 }])),
        sidecar('b', 3000, await exposition([{ route: 'r', status: 200, ms: 40, n: 20 }])),
      ],
    };
    const [row, ...rest] = statRows(prev, cur);
    expect(rest).toEqual([]);
    expect(row).toMatchObject({ direction: 'outbound', service: 'users', route: 'r', requests: 40, sidecars: 2 });
    expect(row!.rps).toBeCloseTo(20);
    expect(row!.successRate).toBeCloseTo(35 / 40);
    // 20 of 40 at 3 ms (0.0025–0.005 bucket), 20 at 40 ms (0.025–0.05 bucket).
    expect(row!.p50).toBeGreaterThan(0.0025);
    expect(row!.p50).toBeLessThanOrEqual(0.005);
    expect(row!.p95).toBeGreaterThan(0.025);
    expect(row!.p99).toBeLessThanOrEqual(0.05);
  });

  it('treats a counter that went down as a restart, and skips sidecars seen once', async () => {
    const prev: TrafficSample = { at: 0, sidecars: [sidecar('a', 0, await exposition([{ route: 'r', status: 200, ms: 1, n: 100 }]))] };
    const cur: TrafficSample = { at: 0, sidecars: [sidecar('a', 1000, await exposition([{ route: 'r', status: 200, ms: 1, n: 7 }])), sidecar('new', 1000, await exposition([{ route: 'r', status: 200, ms: 1, n: 50 }]))] };
    const [row] = statRows(prev, cur);
    expect(row).toMatchObject({ requests: 7, sidecars: 1, successRate: 1 });
  });
});

describe('scrapeSidecars', () => {
  let server: Server | undefined;
  afterAll(() => server?.close());

  it('reads /metrics over HTTP and reports a sidecar that does not answer', async () => {
    const text = await exposition([{ route: 'r', status: 200, ms: 1, n: 3 }]);
    server = createServer((_req, res) => res.end(text));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    // A port that was just free and is closed again: nobody listens there.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const sample = await scrapeSidecars([
      { id: 'up', service: 'orders', adminAddress: `127.0.0.1:${port}` },
      { id: 'down', service: 'orders', adminAddress: `127.0.0.1:${deadPort}` },
    ]);
    expect(sample.sidecars[0]).toMatchObject({ id: 'up', ok: true });
    expect(sample.sidecars[0]!.series[0]).toMatchObject({ route: 'r', requests: 3 });
    expect(sample.sidecars[1]).toMatchObject({ id: 'down', ok: false, error: 'ECONNREFUSED' });
  });
});
