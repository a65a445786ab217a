// Span records (span-record.ts) as OpenTelemetry ReadableSpans, for the SDK's span processors and
// exporters. Runs in the export worker (otlp-export-worker.ts) in a sidecar, and in process behind
// ProcessorSink for tests and library use. Importing this loads the SDK: the request path never does.
import { TraceFlags, type HrTime, type SpanContext, type SpanKind, type SpanStatus } from '@opentelemetry/api';
import { addHrTimes, hrTimeDuration, millisToHrTime, TraceState, type InstrumentationScope } from '@opentelemetry/core';
import { detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, SimpleSpanProcessor, type ReadableSpan, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { SpanRecord, SpanSink } from './span-record.js';

export const INSTRUMENTATION_SCOPE: InstrumentationScope = Object.freeze({ name: 'meshlet' });

/** service.name and meshlet.component, then OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME over them. */
export function meshletResource(serviceName: string): Resource {
  return resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName, 'meshlet.component': 'sidecar' }).merge(detectResources({ detectors: [envDetector] }));
}

class RecordedSpan implements ReadableSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly parentSpanContext: SpanContext | undefined;
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  readonly duration: HrTime;
  readonly status: SpanStatus;
  readonly attributes: Record<string, string | number>;
  readonly links = [];
  readonly events = [];
  readonly ended = true;
  readonly resource: Resource;
  readonly instrumentationScope = INSTRUMENTATION_SCOPE;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  readonly #context: SpanContext;

  constructor(r: SpanRecord, resource: Resource, timeOrigin: HrTime) {
    const traceState = r.traceState !== undefined ? new TraceState(r.traceState) : undefined;
    this.#context = { traceId: r.traceId, spanId: r.spanId, traceFlags: TraceFlags.SAMPLED, traceState };
    this.parentSpanContext = r.parentSpanId !== undefined ? { traceId: r.traceId, spanId: r.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: r.parentRemote, traceState } : undefined;
    this.name = r.name;
    this.kind = r.kind as number as SpanKind;
    this.startTime = addHrTimes(timeOrigin, millisToHrTime(r.start));
    this.endTime = addHrTimes(timeOrigin, millisToHrTime(r.end));
    this.duration = hrTimeDuration(this.startTime, this.endTime);
    this.status = r.statusMessage !== undefined ? { code: r.status as number, message: r.statusMessage } : { code: r.status as number };
    this.attributes = r.attributes;
    this.resource = resource;
  }

  spanContext(): SpanContext {
    return this.#context;
  }
}

/** A ReadableSpan for a record made on a thread whose performance.timeOrigin was `timeOriginMs`. */
export function toReadableSpan(r: SpanRecord, resource: Resource, timeOriginMs: number): ReadableSpan {
  return new RecordedSpan(r, resource, millisToHrTime(timeOriginMs));
}

export interface ProcessorSinkOptions {
  serviceName: string;
  /** Export every span as it ends (tests) instead of the SDK's batches (OTEL_BSP_* configure those). */
  simple?: boolean;
}

/** Records to an SDK exporter in this thread, through the SDK's own Simple or Batch span processor. */
export class ProcessorSink implements SpanSink {
  readonly #processor: SpanProcessor;
  readonly #resource: Resource;
  readonly #timeOrigin = performance.timeOrigin;

  constructor(exporter: SpanExporter, opts: ProcessorSinkOptions) {
    this.#processor = opts.simple ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter);
    this.#resource = meshletResource(opts.serviceName);
  }

  push(record: SpanRecord): void {
    this.#processor.onEnd(toReadableSpan(record, this.#resource, this.#timeOrigin));
  }

  forceFlush(): Promise<void> {
    return this.#processor.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.#processor.shutdown();
  }
}
