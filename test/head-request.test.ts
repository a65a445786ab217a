// HEAD requests are relayed with the upstream's headers and no body, on both listeners, and the
// sidecar stays up and keeps serving afterwards (a HEAD once crashed it: the dropped upstream body
// emitted an unhandled 'error').
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';

let up: Upstream;
let sidecar: SidecarHandle;

beforeAll(async () => {
  up = await startUpstream({ id: 'users' });
  sidecar = await startSidecar({ config: { services: { users: { endpoints: [{ address: up.address }] } } }, args: ['--app', up.address] });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
  await up.close();
});

describe('HEAD request', () => {
  for (const listener of ['outbound', 'inbound'] as const) {
    it(`relays headers without a body and keeps serving (${listener})`, async () => {
      for (let i = 0; i < 5; i++) {
        const head = await call(sidecar[listener]!, { host: 'users', method: 'HEAD', path: `/h/${i}` });
        expect(head.status).toBe(200);
        expect(head.text).toBe('');
        expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
        expect(head.headers['x-upstream-id']).toBe('users');
      }
      const head = await call(sidecar[listener]!, { host: 'users', method: 'HEAD', path: '/big', headers: { 'x-upstream-behaviour': JSON.stringify({ kind: 'stream', bytes: 10_000_000 }) } });
      expect(head.headers['content-length']).toBe('10000000');
      expect(head.text).toBe('');
      const get = await call(sidecar[listener]!, { host: 'users', path: '/after' });
      expect(get.status).toBe(200);
      expect(get.json().path).toBe('/after');
      expect(sidecar.proc.child.exitCode).toBeNull();
    });
  }
});
