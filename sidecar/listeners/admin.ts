// Admin listener (loopback by default): liveness, readiness, the snapshot in force, endpoint state,
// metrics. Read-only; nothing here changes the data path.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { meshError } from '../../core/errors.js';
import { writeError } from '../error-response.js';
import type { Runtime } from '../runtime.js';

export interface AdminDeps {
  runtime: () => Runtime | undefined;
  ready: () => boolean;
  status: () => Record<string, unknown>;
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** Extra read-only JSON routes (e.g. /stats from telemetry). */
  extra?: Record<string, () => Promise<unknown> | unknown>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

export function adminListener(deps: AdminDeps): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return writeError(res, meshError('METHOD_NOT_ALLOWED', `${req.method} ${path}: the admin API is read-only`));
    switch (path) {
      case '/live':
        return json(res, 200, { live: true });
      case '/ready': {
        const ready = deps.ready();
        return json(res, ready ? 200 : 503, { ready, ...deps.status() });
      }
      case '/config': {
        const rt = deps.runtime();
        if (!rt) return json(res, 404, { error: { code: 'NOT_FOUND', message: 'no config applied yet' } });
        return json(res, 200, { version: rt.snapshot.version, hash: rt.snapshot.hash, config: rt.snapshot.config, endpoints: rt.snapshot.endpoints });
      }
      case '/endpoints': {
        const rt = deps.runtime();
        const services: Record<string, unknown> = {};
        for (const [name, s] of rt?.services ?? []) services[name] = { endpoints: s.endpoints.map((e) => e.describe()), ejected: s.ejectedCount(), inflight: s.requests.inflight };
        return json(res, 200, { version: rt?.snapshot.version ?? null, services });
      }
      case '/metrics':
        if (deps.metrics) {
          deps.metrics().then(
            (m) => {
              res.writeHead(200, { 'content-type': m.contentType });
              res.end(m.body);
            },
            (e: Error) => writeError(res, meshError('INTERNAL', `metrics: ${e.message}`)),
          );
          return;
        }
        return writeError(res, meshError('NOT_FOUND', 'metrics are not enabled'));
      default: {
        const extra = deps.extra?.[path ?? ''];
        if (extra) {
          Promise.resolve(extra()).then(
            (v) => json(res, 200, v),
            (e: Error) => writeError(res, meshError('INTERNAL', e.message)),
          );
          return;
        }
        return writeError(res, meshError('NOT_FOUND', `no admin endpoint ${path}; try /live /ready /config /endpoints /metrics`));
      }
    }
  };
}
