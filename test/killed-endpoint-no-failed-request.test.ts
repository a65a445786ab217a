// kill -9 of one upstream process under load costs the client no failed request: requests in flight
// on it are reset and retried elsewhere, new connections to it are refused and retried, and its
// breaker ejects it. Default retry policy (connect-failure + reset, idempotent methods).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, load, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { spawnUpstream, type ProcessUpstream } from './harness/upstream.js';

let upstreams: ProcessUpstream[];
let sidecar: SidecarHandle;

beforeAll(async () => {
  upstreams = await Promise.all(['u1', 'u2', 'u3'].map((id) => spawnUpstream({ id })));
  sidecar = await startSidecar({ config: { services: { users: { endpoints: upstreams.map((u) => ({ address: u.address })) } } } });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
});

describe('a killed endpoint', () => {
  it('costs the client no failed request', async () => {
    const victim = upstreams[0]!;
    let done = 0;
    let killedAt = -1;
    const failures: string[] = [];
    const served: Record<string, number> = {};
    const run = load({ total: 1_500, concurrency: 8, timeoutMs: 90_000 }, async (i) => {
      // Some requests are slow, so the kill finds requests in flight on the victim.
      const headers: Record<string, string> = i % 10 === 0 ? { 'x-upstream-behaviour': JSON.stringify({ kind: 'delay', ms: 50 }) } : {};
      const r = await call(sidecar.outbound, { host: 'users', path: `/users/${i}`, headers });
      done++;
      if (done === 300 && killedAt < 0) {
        killedAt = done;
        void victim.kill('SIGKILL');
      }
      if (r.status !== 200) failures.push(`${i}: ${r.status} ${r.text.slice(0, 200)}`);
      else served[String(r.headers['x-upstream-id'])] = (served[String(r.headers['x-upstream-id'])] ?? 0) + 1;
    });
    const { errors, started } = await run;
    console.log(`served by`, served, `killed after ${killedAt} responses`);
    expect(killedAt).toBe(300);
    // Bounded in time: on a loaded machine not all may start, but plenty must run after the kill.
    expect(started).toBeGreaterThanOrEqual(killedAt + 500);
    expect(errors).toEqual([]);
    expect(failures).toEqual([]);
    expect(await victim.proc.exited).not.toBeNull();
    // The others carried the rest, and the victim is ejected now.
    expect((served.u2 ?? 0) + (served.u3 ?? 0)).toBeGreaterThan(started - killedAt);
    const { body } = await sidecar.adminJson('/endpoints');
    const victimState = body.services.users.endpoints.find((e: { address: string }) => e.address === victim.address);
    expect(victimState.breaker).not.toBe('closed');
  }, 150_000);
});
