// Load generator process built on autocannon's API. autocannon's own histogram keeps whole
// milliseconds, too coarse for a proxy's added latency, so response times (float ms) are kept here
// and reported in microseconds. Prints one JSON line, the same shape as wrk-report.lua's.
// Usage: node dist/bench/load-autocannon.js URL CONNECTIONS SECONDS [HOST]
import autocannon from 'autocannon';

const [url, conns, secs, host] = process.argv.slice(2);
if (!url || !conns || !secs) throw new Error('usage: load-autocannon.js URL CONNECTIONS SECONDS [HOST]');
const connections = Number(conns);
const duration = Number(secs);

// Bounded memory: beyond this many samples responses are still counted but not timed.
const MAX_SAMPLES = 2_000_000;
const samples = new Float64Array(MAX_SAMPLES);
let n = 0;

const instance = autocannon({ url, connections, duration, headers: host ? { host } : {} });
instance.on('response', (_client, _status, _bytes, ms) => {
  if (n < MAX_SAMPLES) samples[n++] = ms;
});
instance.on('done', (r) => {
  const timed = samples.subarray(0, n).sort();
  const pct = (p: number): number => (n === 0 ? NaN : Math.round(timed[Math.min(n - 1, Math.floor((p / 100) * n))]! * 1000));
  const out = { requests: r.requests.total, durationS: r.duration, p50Us: pct(50), p99Us: pct(99), errors: r.errors + r.timeouts, non2xx: r.non2xx };
  process.stdout.write(`${JSON.stringify(out)}\n`);
});
