// The real expositions pass `promtool check metrics` (Debian's prometheus package): a sidecar's admin
// /metrics after traffic that exercises every sidecar metric family (retries, an opening breaker,
// overflows, errors), and the control plane's /metrics.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, tempDir } from './control-plane-fixture.js';
import { stopAll } from './harness/process.js';
import { refusedAddress } from './harness/refused.js';
import { promtoolCheckMetrics } from './harness/prometheus.js';
import { call, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';
import { waitFor } from './harness/wait.js';

let flaky: Upstream;
let slow: Upstream;
let sidecar: SidecarHandle;
let dead: string;

beforeAll(async () => {
  flaky = await startUpstream({ id: 'flaky', behaviour: { kind: 'fail-first', count: 2, status: 503 } });
  slow = await startUpstream({ id: 'slow', behaviour: { kind: 'delay', ms: 300 } });
  dead = await refusedAddress(); // not a released port, which another test may be given
  sidecar = await startSidecar({
    service: 'orders',
    config: {
      services: {
        flaky: { endpoints: [{ address: flaky.address }], retry: { attempts: 3, on: ['503'], backoff: { base: '1ms', max: '2ms' } } },
        dead: { endpoints: [{ address: dead }], retry: { attempts: 1 }, circuitBreaker: { consecutiveFailures: 2, openFor: '30s' } },
        slow: { endpoints: [{ address: slow.address }], limits: { maxRequests: 1 } },
      },
    },
  });
});

afterAll(async () => {
  await stopAll();
  await flaky?.close();
  await slow?.close();
});

describe('promtool check metrics', () => {
  it('passes on a sidecar exposition holding every sidecar metric family', async () => {
    expect((await call(sidecar.outbound, { host: 'flaky', path: '/' })).status).toBe(200);
    for (let i = 0; i < 3; i++) await call(sidecar.outbound, { host: 'dead', path: '/' });
    const statuses = await Promise.all([0, 1, 2].map(() => call(sidecar.outbound, { host: 'slow', path: '/' }).then((r) => r.status)));
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThanOrEqual(1);

    const text = await waitFor(async () => {
      const t = await (await fetch(`http://${sidecar.admin}/metrics`)).text();
      return t.includes('meshlet_overflows_total{') ? t : undefined;
    });
    for (const family of ['meshlet_requests_total', 'meshlet_request_duration_seconds_bucket', 'meshlet_retries_total', 'meshlet_circuit_breaker_state', 'meshlet_circuit_breaker_transitions_total', 'meshlet_endpoint_ejections_total', 'meshlet_endpoints', 'meshlet_overflows_total', 'meshlet_config_info', 'process_resident_memory_bytes']) {
      expect(text, family).toMatch(new RegExp(`^${family}\\{?.* \\d`, 'm'));
    }
    expect(text).toMatch(new RegExp(`meshlet_circuit_breaker_state\\{service="dead",endpoint="${dead.replace(/\./g, '\\.')}"\\} 2`));
    const check = promtoolCheckMetrics(text);
    expect(check.output).toBe('');
    expect(check.status).toBe(0);
  });

  it('passes on the control plane exposition', async () => {
    const t = await tempDir('cp-promtool');
    try {
      const cp = await startControlPlane({ dataDir: path.join(t.dir, 'cp') });
      const res = await fetch(`${cp.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      const check = promtoolCheckMetrics(await res.text());
      expect(check.output).toBe('');
      expect(check.status).toBe(0);
    } finally {
      await stopAll();
      await t.cleanup();
    }
  });
});
