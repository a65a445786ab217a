// The worker half of WorkerSpanSink (worker-span-sink.ts): span records become ReadableSpans
// (span-export.ts) for OpenTelemetry's BatchSpanProcessor, which batches them as OTEL_BSP_* say and
// hands them to an OTLP/HTTP exporter built from the SDK's own serializer and HTTP export delegate,
// so the endpoint, headers, compression, timeout and retries come from the same
// OTEL_EXPORTER_OTLP_* variables as with the stock exporter (a worker starts with a copy of the
// process environment).
import { parentPort, workerData } from 'node:worker_threads';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { BatchSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { meshletResource, toReadableSpan } from './span-export.js';
import type { FromWorker, ToWorker, WorkerSinkData } from './worker-span-sink.js';

const opts = workerData as WorkerSinkData;
const json = opts.protocol === 'http/json';
const exporter = new OTLPExporterBase<ReadableSpan[]>(
  createOtlpHttpExportDelegate(
    convertLegacyHttpOptions({}, 'TRACES', 'v1/traces', { 'Content-Type': json ? 'application/json' : 'application/x-protobuf' }),
    json ? JsonTraceSerializer : ProtobufTraceSerializer,
    'otlp_http_span_exporter',
    { name: 'span', countItems: (spans: ReadableSpan[]) => spans.length },
    undefined,
  ),
);
const processor = new BatchSpanProcessor(exporter);
const resource = meshletResource(opts.serviceName);

parentPort!.on('message', (m: ToWorker) => {
  if ('records' in m) {
    for (const r of m.records) processor.onEnd(toReadableSpan(r, resource, opts.timeOrigin));
  } else if ('flush' in m) {
    const reply: FromWorker = { flushed: m.flush };
    void processor.forceFlush().finally(() => parentPort!.postMessage(reply));
  } else {
    void processor.shutdown().finally(() => parentPort!.close());
  }
});
