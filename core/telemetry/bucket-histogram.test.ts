import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BucketHistogram } from './bucket-histogram.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const LABELS = ['service', 'status_class'];
const samples: Array<[string, string, number]> = [
  ['users', '2xx', 0.0004],
  ['users', '2xx', 0.001], // on a bound: counted in it (le is "less or equal")
  ['users', '2xx', 0.05],
  ['users', '5xx', 3],
  ['orders', '2xx', 0.2],
];

describe('BucketHistogram', () => {
  it('prints exactly what prom-client prints for the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const h = new BucketHistogram({ name: 'x_seconds', help: 'h', labelNames: LABELS, buckets: BUCKETS, registers: [ours] });
    const p = new Histogram({ name: 'x_seconds', help: 'h', labelNames: LABELS, buckets: BUCKETS, registers: [theirs] });
    for (const [svc, cls, v] of samples) {
      h.series(svc, cls).observe(v);
      p.labels(svc, cls).observe(v);
    }
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('x_seconds_bucket{le="0.001",service="users",status_class="2xx"} 2');
    expect(text).toContain('x_seconds_count{service="users",status_class="5xx"} 1');
  });

  it('returns the same series object per label combination and ignores non-finite values', () => {
    const h = new BucketHistogram({ name: 'y_seconds', help: 'h', labelNames: LABELS, buckets: BUCKETS, registers: [new Registry()] });
    const s = h.series('users', '2xx');
    expect(h.series('users', '2xx')).toBe(s);
    s.observe(Number.NaN);
    s.observe(0.5);
    expect([s.count, s.sum]).toEqual([1, 0.5]);
  });

  it('JSON form merges the series labels in, like prom-client get()', async () => {
    const r = new Registry();
    const h = new BucketHistogram({ name: 'z_seconds', help: 'h', labelNames: LABELS, buckets: BUCKETS, registers: [r] });
    h.series('users', '2xx').observe(0.05);
    const [json] = await r.getMetricsAsJSON();
    const p = new Histogram({ name: 'z_seconds', help: 'h', labelNames: LABELS, buckets: BUCKETS, registers: [new Registry()] });
    p.labels('users', '2xx').observe(0.05);
    const want = await p.get();
    // prom-client carries an (empty) exemplar per value; there are no exemplars here.
    want.values = want.values.map(({ exemplar: _e, ...v }) => v) as typeof want.values;
    expect(json).toEqual(want);
  });
});
