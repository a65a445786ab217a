// CPU of the OTLP export worker per span, by hand-off interval: the thread a sidecar's span records go
// to (core/telemetry/worker-span-sink.ts). Each interval gets its own sink and worker, all fed the same
// spans at the same time (a sampled request's two records, as the data path makes them, through
// Tracing) and exporting over OTLP/HTTP to one local receiver, so machine drift hits them alike. The
// window starts after an idle wait (the workers' start-up and V8's first memory-reducer collections,
// ~8–9.5 s after start, left out). CPU time per thread from /proc/self/task/TID/schedstat; a sink's
// threads are the ones its constructor started (its worker's); a thread node starts later (libuv's
// pool, say) counts for no sink.
//
//   npm run build
//   node --single-threaded-gc --max-semi-space-size=8 bench/export-worker-cpu.mjs [SPANS_PER_S] [SECONDS] [IDLE_S] [INTERVALS_MS]
//   (defaults: 60 spans a second, i.e. 1 % of 3,000 requests, 30 s, 10 s idle, intervals 100,1000,5000)
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const [rate = 60, seconds = 30, idle = 10] = process.argv.slice(2, 5).map(Number);
const intervals = (process.argv[5] ?? '100,1000,5000').split(',').map(Number);
if (![rate, seconds, idle, ...intervals].every((n) => Number.isFinite(n) && n >= 0) || rate > 100_000 || seconds > 600 || idle > 600) {
  console.error('usage: node bench/export-worker-cpu.mjs [SPANS_PER_S ≤ 100000] [SECONDS ≤ 600] [IDLE_S ≤ 600] [INTERVALS_MS, comma-separated]');
  process.exit(2);
}
const { startOtlpReceiver } = await import(path.join(dist, 'test/harness/otlp-receiver.js'));
const { Tracing } = await import(path.join(dist, 'core/telemetry/tracing.js'));
const { WorkerSpanSink } = await import(path.join(dist, 'core/telemetry/worker-span-sink.js'));

const receiver = await startOtlpReceiver();
// The worker's exporter reads its endpoint from the environment it is started with.
process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.endpoint;
const tids = () => new Set(readdirSync('/proc/self/task'));
const cpuMs = (tid) => Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;

// A worker's thread exists once its constructor returned: the threads new since just before name it.
const sinks = intervals.map((handOffMs) => {
  const before = tids();
  const sink = new WorkerSpanSink({ protocol: 'http/protobuf', serviceName: `interval-${handOffMs}`, handOffMs });
  const threads = [...tids()].filter((t) => !before.has(t));
  return { handOffMs, tracing: new Tracing({ sink, sampleRatio: 1 }), threads };
});
await new Promise((r) => setTimeout(r, idle * 1000));

const start = new Map(sinks.flatMap((s) => s.threads.map((t) => [t, cpuMs(t)])));
let requests = 0;
const perTick = rate / 2 / 10; // two spans a sampled request, ten ticks a second
let owed = 0;
const timer = setInterval(() => {
  owed += perTick;
  for (; owed >= 1; owed--, requests++) {
    for (const s of sinks) {
      const headers = { host: 'bench' };
      const t = s.tracing.start({ direction: 'outbound', method: 'GET', authority: 'bench', path: '/', headers, startedAt: performance.now() });
      t.attemptStarted(1, '127.0.0.1:9001', { ...headers }).end(200, undefined);
      t.end({ status: 200, info: { service: 'bench', route: 'default', backend: 'bench', endpoint: '127.0.0.1:9001', attempts: 1, retries: 0 }, durationMs: 0.8, bytesIn: 0, bytesOut: 1234 });
    }
  }
}, 100);
await new Promise((r) => setTimeout(r, seconds * 1000));
clearInterval(timer);
const rows = sinks.map((s) => {
  const ms = s.threads.reduce((sum, t) => sum + cpuMs(t) - start.get(t), 0);
  return { handOffMs: s.handOffMs, threads: s.threads.length, workerCpuMs: Math.round(ms * 10) / 10, usPerSpan: Math.round((ms * 1000) / (requests * 2)) };
});
console.log(`${requests * 2} spans per sink over ${seconds} s (${rate}/s), after ${idle} s idle; Node ${process.version}`);
console.log('| hand-off every | worker CPU | µs per span |');
console.log('|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.handOffMs} ms | ${r.workerCpuMs} ms | ${r.usPerSpan} |`);
await Promise.all(sinks.map((s) => s.tracing.shutdown()));
const got = receiver.spans.length;
await receiver.close();
// Every span made must have been exported, or the CPU figures are of a pipeline that lost work.
if (got < requests * 2 * sinks.length) {
  console.error(`the receiver got ${got} spans of ${requests * 2 * sinks.length}`);
  process.exitCode = 1;
}
