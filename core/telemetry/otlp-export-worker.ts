// The worker half of WorkerSpanExporter (worker-span-exporter.ts): sends OTLP/HTTP requests the main
// thread has already serialized, with OpenTelemetry's own HTTP export delegate, so the endpoint,
// headers, compression, timeout and retries come from the same OTEL_EXPORTER_OTLP_* variables as
// with the stock exporter (a worker starts with a copy of the process environment).
import { parentPort, workerData } from 'node:worker_threads';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ExportRequest, ExportReply, WorkerExportOptions } from './worker-span-exporter.js';

const opts = workerData as WorkerExportOptions;
const json = opts.protocol === 'http/json';
const real = json ? JsonTraceSerializer : ProtobufTraceSerializer;
// A request arrives as bytes already: the "serializer" hands them on; responses are read as usual.
const passThrough = { serializeRequest: (r: ExportRequest) => r.bytes, deserializeResponse: (d: Uint8Array) => real.deserializeResponse(d) };
const exporter = new OTLPExporterBase<ExportRequest>(
  createOtlpHttpExportDelegate(
    convertLegacyHttpOptions({}, 'TRACES', 'v1/traces', { 'Content-Type': json ? 'application/json' : 'application/x-protobuf' }),
    passThrough,
    'otlp_http_span_exporter',
    { name: 'span', countItems: (r: ExportRequest) => r.spans },
    undefined,
  ),
);

parentPort!.on('message', (m: ExportRequest | { shutdown: true }) => {
  if ('shutdown' in m) {
    void exporter.shutdown().finally(() => parentPort!.close());
    return;
  }
  exporter.export(m, (result) => {
    const reply: ExportReply = { id: m.id, code: result.code, error: result.error?.message };
    parentPort!.postMessage(reply);
  });
});
