// A Prometheus histogram for the request path, exposed through a prom-client Registry like any of
// its metrics. prom-client's observe() converts, validates and hashes the labels on every call, even
// on a child from labels(): ~1.1 µs of sidecar CPU per request on the data-plane bench (3.8 %). Here
// a series is looked up once per label combination and an observation is a bucket search and three
// additions; the registry formats the exposition exactly as for its own histograms.
import type { Registry } from 'prom-client';

export class HistogramSeries {
  readonly labels: Readonly<Record<string, string>>;
  readonly #bounds: readonly number[];
  /** Per-bucket counts (not cumulative); the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(labels: Readonly<Record<string, string>>, bounds: readonly number[]) {
    this.labels = labels;
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return; // a NaN would poison the sum forever
    const b = this.#bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

interface ValuePair {
  value: number;
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  metricName: string;
}

export class BucketHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames: readonly string[];
  readonly #bounds: readonly number[];
  #series = new Map<string, HistogramSeries>();

  constructor(opts: { name: string; help: string; labelNames: readonly string[]; buckets: readonly number[]; registers: Registry[] }) {
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames;
    this.#bounds = [...opts.buckets].sort((a, b) => a - b);
    for (const r of opts.registers) r.registerMetric(this as never);
  }

  /** The series of one label combination (values in labelNames order); call once and keep it. */
  series(...values: string[]): HistogramSeries {
    const key = values.join('\u0000');
    let s = this.#series.get(key);
    if (s === undefined) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
      s = new HistogramSeries(Object.freeze(labels), this.#bounds);
      this.#series.set(key, s);
    }
    return s;
  }

  /** What the registry prints: `le` first, then the series labels, as prom-client's Histogram does. */
  getForPromString(): { name: string; help: string; type: string; values: ValuePair[]; aggregator: string } {
    const values: ValuePair[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.#series.values()) {
      let acc = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ value: acc, labels: { le: this.#bounds[i]! }, sharedLabels: s.labels, metricName: bucket });
      }
      values.push({ value: s.count, labels: { le: '+Inf' }, sharedLabels: s.labels, metricName: bucket });
      values.push({ value: s.sum, labels: {}, sharedLabels: s.labels, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels: {}, sharedLabels: s.labels, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** The same with the series labels merged in (prom-client's get() / JSON form). */
  get(): { name: string; help: string; type: string; values: ValuePair[]; aggregator: string } {
    const data = this.getForPromString();
    data.values = data.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return data;
  }

  /** Zeroes every series; the series objects stay valid (callers hold them). */
  reset(): void {
    for (const s of this.#series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
