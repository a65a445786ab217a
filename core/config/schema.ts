// The mesh config as users write it (YAML or JSON). This zod schema is the single source: the
// TypeScript types are inferred from it and config/mesh.schema.json is generated from it
// (`npm run schema`; test/config-schema.test.ts fails when the committed file is stale).
// Defaults and cross-field rules live in normalize.ts, so the schema describes the input only.
import { z } from 'zod';

export const DURATION_PATTERN = '^\\d+(\\.\\d+)?(ms|s|m|h)$';
const NAME_PATTERN = '^[a-z0-9]([-a-z0-9._]{0,61}[a-z0-9])?$';
const ADDRESS_PATTERN = '^(\\[[0-9a-fA-F:.]+\\]|[^:\\s\\[\\]]+):\\d{1,5}$';

const duration = z
  .union([z.string().regex(new RegExp(DURATION_PATTERN), 'expected a duration such as "250ms", "2s" or "1m"'), z.number().nonnegative()])
  .describe('A duration: "250ms", "2s", "1m", "1h", or a number of milliseconds.');

const serviceName = z.string().regex(new RegExp(NAME_PATTERN), 'expected a lower-case DNS-style name (a-z, 0-9, "-", ".", "_")');
const address = z.string().regex(new RegExp(ADDRESS_PATTERN), 'expected "host:port" (IPv6 as "[::1]:port")');
const labels = z.record(z.string().min(1).max(63), z.string().max(253)).describe('Free-form key/value labels; subsets select endpoints by them.');

export const endpointSchema = z.strictObject({
  address: address.describe('host:port of the instance (its sidecar inbound listener, or the app itself).'),
  weight: z.int().min(1).max(10_000).optional().describe('Relative weight for weighted balancing (default 1).'),
  labels: labels.optional(),
});

export const retryConditions = ['connect-failure', 'reset', 'timeout', 'gateway-error', '5xx', 'retriable-4xx'] as const;

export const retrySchema = z.strictObject({
  attempts: z.int().min(1).max(10).optional().describe('Total tries including the first (default 2). 1 disables retries.'),
  perTryTimeout: duration.optional().describe('Deadline of one try; the total timeout still bounds them all.'),
  on: z
    .array(z.union([z.enum(retryConditions), z.string().regex(/^[1-5]\d\d$/, 'expected a condition or a status code such as "503"'), z.int().min(100).max(599)]))
    .optional()
    .describe('Retry conditions: connect-failure, reset, timeout, gateway-error (502/503/504), 5xx, retriable-4xx (409), or status codes. Default: connect-failure and reset.'),
  methods: z.array(z.string().regex(/^[A-Z]+$/)).optional().describe('Methods that may be retried (default: the idempotent ones).'),
  backoff: z
    .strictObject({ base: duration.optional(), max: duration.optional() })
    .optional()
    .describe('Exponential backoff with full jitter between tries (default 25ms base, 250ms max).'),
  budget: z
    .strictObject({
      ratio: z.number().min(0).max(10).optional().describe('Retries allowed as a share of recent requests (default 0.2).'),
      minPerSecond: z.number().min(0).optional().describe('Retries allowed per second regardless of traffic (default 10).'),
      window: duration.optional().describe('How far back requests count (default 10s).'),
    })
    .optional(),
  maxBufferBytes: z.int().min(0).max(64 * 1024 * 1024).optional().describe('Request bodies up to this size are buffered so they can be retried (default 64 KiB); larger ones are never retried.'),
  honorRetryAfter: z.boolean().optional().describe('Wait for a Retry-After (up to backoff.max × 4) before retrying (default true).'),
});

export const circuitBreakerSchema = z.strictObject({
  consecutiveFailures: z.int().min(1).optional().describe('Eject an endpoint after this many failures in a row (default 5).'),
  failureRate: z
    .strictObject({
      threshold: z.number().gt(0).max(1).describe('Share of failed requests that ejects the endpoint.'),
      window: duration.optional().describe('Sliding window (default 10s).'),
      minRequests: z.int().min(1).optional().describe('Fewest requests in the window before the rate counts (default 20).'),
    })
    .optional(),
  openFor: duration.optional().describe('First ejection lasts this long (default 5s); each repeated trip doubles it.'),
  maxOpenFor: duration.optional().describe('Cap on the ejection time (default 60s).'),
  halfOpenProbes: z.int().min(1).max(100).optional().describe('Successful probes needed to close again (default 2).'),
  maxEjectionPercent: z.int().min(0).max(100).optional().describe('At most this share of a service\'s endpoints is ejected at once; at least one may always be (default 100).'),
});

export const limitsSchema = z.strictObject({
  maxRequests: z.int().min(1).optional().describe('Requests in flight to the service from this sidecar (default 1024).'),
  maxPending: z.int().min(0).optional().describe('Requests waiting for a connection (default 1024).'),
  maxConnectionsPerEndpoint: z.int().min(1).max(10_000).optional().describe('Pooled keep-alive connections per endpoint (default 64).'),
});

export const discoverySchema = z.strictObject({
  dns: z
    .strictObject({
      srv: z.string().min(1).optional().describe('SRV name, e.g. _http._tcp.users.mesh.local (priority, weight and port honoured).'),
      host: z.string().min(1).optional().describe('A/AAAA name; needs port.'),
      port: z.int().min(1).max(65535).optional(),
      servers: z.array(address).optional().describe('DNS servers to ask (default: the system resolver).'),
      refresh: duration.optional().describe('Re-resolve at least this often; record TTLs shorten it (default 30s).'),
    })
    .optional(),
  consul: z
    .strictObject({
      service: z.string().min(1).optional().describe('Consul service name (default: the mesh service name).'),
      address: z.string().optional().describe('Consul agent HTTP address host:port or http(s)://host:port (default $CONSUL_HTTP_ADDR, else 127.0.0.1:8500). The ACL token comes from CONSUL_HTTP_TOKEN.'),
      tag: z.string().optional(),
      dc: z.string().optional(),
      passingOnly: z.boolean().optional().describe('Only instances whose checks all pass (default true); false also takes "warning" ones, never "critical".'),
      wait: duration.optional().describe('How long one blocking query may be held by Consul (default 30s, at most 10m).'),
    })
    .optional(),
  etcd: z
    .strictObject({
      prefix: z.string().min(1).optional().describe('Key prefix holding the instances (default /meshlet/instances/<service>/).'),
      endpoints: z.array(z.string()).optional().describe('etcd client URLs (default: the control plane\'s).'),
    })
    .optional(),
  emptyGrace: duration
    .optional()
    .describe('An empty answer after a non-empty one is believed only once it has persisted this long; meanwhile the last good set is kept, marked stale (default 10s; 0 believes it at once).'),
});

export const serviceSchema = z.strictObject({
  hosts: z.array(z.string().min(1)).optional().describe('Extra Host names that address this service (its name always does).'),
  endpoints: z.array(endpointSchema).optional(),
  discovery: discoverySchema.optional(),
  loadBalancer: z.enum(['round-robin', 'weighted-round-robin', 'random', 'least-request']).optional().describe('Default round-robin.'),
  timeout: duration.optional().describe('Whole-request deadline, retries included (default 15s; 0 disables).'),
  connectTimeout: duration.optional().describe('TCP connect timeout per endpoint (default 1s).'),
  retry: retrySchema.optional(),
  circuitBreaker: circuitBreakerSchema.optional(),
  limits: limitsSchema.optional(),
});

const headerMatch = z.union([
  z.string(),
  z.strictObject({ exact: z.string().optional(), prefix: z.string().optional(), regex: z.string().optional(), present: z.boolean().optional() }),
]);

export const routeSchema = z.strictObject({
  name: serviceName.describe('Unique route name (used in metrics and logs).'),
  match: z
    .strictObject({
      service: serviceName.optional().describe('The service the caller addressed (by Host, proxy URI or upstream port).'),
      host: z.string().optional().describe('Any other Host the route answers for (egress-style).'),
      path: z.string().startsWith('/').optional(),
      pathPrefix: z.string().startsWith('/').optional(),
      pathRegex: z.string().optional(),
      methods: z.array(z.string().regex(/^[A-Z]+$/)).optional(),
      headers: z.record(z.string().min(1), headerMatch).optional(),
    })
    .describe('All given conditions must hold. Routes are tried in order; the first match wins.'),
  backends: z
    .array(z.strictObject({ service: serviceName, subset: labels.optional(), weight: z.int().min(0).max(10_000).optional() }))
    .min(1)
    .describe('Weighted split across services or label subsets.'),
  timeout: duration.optional().describe('Overrides the backend service\'s timeout for this route.'),
  retry: retrySchema.optional().describe('Overrides the backend service\'s retry policy for this route.'),
});

export const meshConfigSchema = z
  .strictObject({
    apiVersion: z.literal('meshlet/v1').optional(),
    services: z.record(serviceName, serviceSchema).describe('Every service of the mesh, by name.'),
    routes: z.array(routeSchema).optional().describe('Routes tried before the default route of each service.'),
    egress: z
      .strictObject({ passthrough: z.boolean().optional().describe('Forward requests for hosts that are no mesh service (default false: NO_ROUTE).') })
      .optional(),
    telemetry: z
      .strictObject({
        accessLog: z
          .strictObject({
            enabled: z.boolean().optional().describe('Default true once an accessLog block is given; without one there is no access log.'),
            sampleRatio: z.number().min(0).max(1).optional().describe('Share of successful requests logged (errors always are). Default 1.'),
            minStatus: z.int().min(100).max(599).optional().describe('Log only responses with at least this status.'),
          })
          .optional()
          .describe('One JSON line per request to where --access-log says (default stdout). Off unless this block is given.'),
        tracing: z.strictObject({ sampleRatio: z.number().min(0).max(1).optional().describe('Head sampling ratio for new traces (default 0.01).') }).optional(),
      })
      .optional(),
  })
  .describe('meshlet mesh config');

export type MeshConfigInput = z.infer<typeof meshConfigSchema>;
export type ServiceInput = z.infer<typeof serviceSchema>;
export type RouteInput = z.infer<typeof routeSchema>;
export type RetryInput = z.infer<typeof retrySchema>;
export type EndpointInput = z.infer<typeof endpointSchema>;
