// Instructions per request of the telemetry observer alone, no network: the calls the data path makes
// (requestStarted, attemptStarted, attempt end, request end) in a loop, the event loop given a turn every
// 500 requests so access log writes and span batches really happen. Run under callgrind, which this
// script zeroes after a 30,000-request warm-up and dumps after N more, so start-up and compiling the
// warm-up are left out; read the main thread's dump (…-01) and leave out V8's GC functions, whose share
// depends on where a collection falls.
//
//   npm run build
//   CG=1 valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=/tmp/obs.%p \
//     node bench/observer-instructions.mjs 50000 MODE
//   callgrind_annotate /tmp/obs.PID.1-01      (total ÷ 50,000 = instructions a request)
//
// MODE: none (noopObserver: the loop's own cost), metrics, log (metrics + access log to a temporary file),
// trace (metrics + tracing, every request unsampled), trace001 (sampled 1 %), trace1 (every request
// sampled), full (metrics + access log + tracing at 1 %). Span records go to a sink that drops them:
// what is measured is the main thread's span work, not the worker's conversion, serialization or export;
// trace001w is trace001 with the real sink, the hand-off to the export worker included (its endpoint:
// OTEL_EXPORTER_OTLP_ENDPOINT, else a closed port, which only the worker notices).
import { exec } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const [nArg, mode = 'full'] = process.argv.slice(2);
const MODES = ['none', 'metrics', 'log', 'trace', 'trace001', 'trace001w', 'trace1', 'full'];
if (!MODES.includes(mode) || !(Number(nArg) > 0)) {
  console.error(`usage: node bench/observer-instructions.mjs N ${MODES.join('|')}`);
  process.exit(2);
}
const { createSidecarObserver } = await import(path.join(dist, 'core/telemetry/sidecar-observer.js'));
const { noopObserver } = await import(path.join(dist, 'core/telemetry/observer.js'));
const { Registry } = await import(path.join(dist, 'core/telemetry/metrics.js'));
const { Tracing } = await import(path.join(dist, 'core/telemetry/tracing.js'));
const { AccessLog } = await import(path.join(dist, 'core/telemetry/access-log.js'));

// A regular file, not /dev/null: a character device is written as a pipe would be (a PIPE_BUF batch per
// write, one write per turn of the event loop), far slower than this loop makes lines, so the queue
// filled and most lines were dropped before they were copied (session 7's figures for the line). Under
// valgrind even a file's writes fall behind (its threads take turns), so the queue may hold them all.
const logDir = mkdtempSync(path.join(os.tmpdir(), 'meshlet-observer-'));
const ratio = { trace: 0, trace001: 0.01, trace001w: 0.01, trace1: 1, full: 0.01 }[mode];
const dropping = { push: () => {}, shutdown: async () => {}, forceFlush: async () => {} };
const accessLog = mode === 'log' || mode === 'full' ? new AccessLog({ destination: path.join(logDir, 'access.log'), batch: { maxQueuedBytes: 512 * 1024 * 1024 } }) : undefined;
const observer =
  mode === 'none'
    ? noopObserver
    : createSidecarObserver({
        registry: new Registry(),
        service: 'client',
        tracing:
          ratio === undefined
            ? undefined
            : mode === 'trace001w'
              ? Tracing.fromEnv({ service: 'client', sampleRatio: ratio, env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', ...process.env } })
              : new Tracing({ sink: dropping, sampleRatio: ratio }),
        accessLog,
      });

async function run(n) {
  for (let i = 0; i < n; i++) {
    const headers = { host: 'bench', 'user-agent': 'wrk', accept: '*/*' };
    const t = observer.requestStarted({ direction: 'outbound', method: 'GET', authority: 'bench', path: '/', headers, startedAt: performance.now() });
    const info = { service: 'bench', route: 'default', backend: 'bench', endpoint: '127.0.0.1:9001', attempts: 1 };
    const a = t.attemptStarted(1, '127.0.0.1:9001', t.injectsHeaders ? { ...headers } : headers);
    a.end(200, undefined);
    t.end({ status: 200, info, durationMs: 0.8154, bytesIn: 0, bytesOut: 1234 });
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
}

const callgrind = (flag) => new Promise((resolve, reject) => exec(`callgrind_control ${flag} ${process.pid}`, (e) => (e ? reject(e) : resolve())));
await run(30_000);
if (process.env.CG) await callgrind('-z');
await run(Number(nArg));
if (process.env.CG) await callgrind('-d');
await observer.close();
// Every line must have been copied and written, or the count is of dropping lines, not logging them.
if (accessLog !== undefined && accessLog.dropped > 0) {
  console.error(`access log dropped ${accessLog.dropped} lines: the count above is not of a logged request`);
  process.exitCode = 1;
}
rmSync(logDir, { recursive: true, force: true });
