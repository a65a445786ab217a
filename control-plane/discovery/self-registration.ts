// One call for a sidecar to put its instance into etcd and/or Consul (for users who already run
// one), next to or instead of the control plane's own registry. It never blocks or fails the
// sidecar's start: registration is retried in the background (0.5 s doubling to 5 s) until it
// succeeds or stop() is called; `ready` resolves once every registry has the instance.
// Labels go to etcd as labels and to Consul as service meta, which the providers map back to labels.
import { parseHostPort } from '../../core/address.js';
import { systemClock, type Clock, type TimerHandle } from '../../core/clock.js';
import { meshError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { registerInConsul, type Registration } from './consul.js';
import { createEtcdClient, registerInEtcd } from './etcd.js';

export interface SelfRegistrationOptions {
  service: string;
  /** Stable instance id (the sidecar id). */
  id: string;
  /** host:port peers should call (the sidecar's inbound or advertised address). */
  address: string;
  labels?: Record<string, string>;
  /** Lease / TTL-check length (default 10 s); the instance vanishes this long after the sidecar dies. */
  ttlSeconds?: number;
  /** etcd client URLs: register under /meshlet/instances/<service>/<id>. */
  etcdEndpoints?: string[];
  /** Consul agent host:port or URL: register with a TTL check. */
  consulAgent?: string;
  log: Logger;
  clock?: Clock;
}

export interface SelfRegistration {
  /** Resolves when the instance is registered everywhere asked (never rejects; failures are retried). */
  readonly ready: Promise<void>;
  /** Deregisters (revokes the lease, deregisters from Consul) and stops retrying. */
  stop(): Promise<void>;
}

const RETRY_BASE_MS = 500;
const RETRY_MAX_MS = 5_000;

export function startSelfRegistration(o: SelfRegistrationOptions): SelfRegistration {
  const hp = parseHostPort(o.address);
  if (!hp || o.address.startsWith(':')) throw meshError('BAD_REQUEST', `self-registration needs the instance address as host:port, got "${o.address}"`);
  const ttl = o.ttlSeconds ?? 10;
  if (!Number.isInteger(ttl) || ttl < 1) throw meshError('BAD_REQUEST', `self-registration TTL must be a whole number of seconds ≥ 1, got ${ttl}`);
  const clock = o.clock ?? systemClock;
  const labels = o.labels ?? {};
  const regs: Registration[] = [];
  const timers = new Set<TimerHandle>();
  const closers: Array<() => void> = [];
  /** Resolvers of `ready`'s parts, settled by stop() too so nobody waits forever. */
  const pending = new Set<() => void>();
  let stopped = false;

  /** Runs `attempt` until it succeeds or we stop. */
  const keepTrying = (what: string, attempt: () => Promise<Registration>): Promise<void> =>
    new Promise<void>((resolve) => {
      pending.add(resolve);
      let failures = 0;
      const run = (): void => {
        if (stopped) return resolve();
        attempt().then(
          (r) => {
            if (stopped) void r.stop().catch(() => undefined);
            else {
              regs.push(r);
              o.log.info({ service: o.service, id: o.id, registry: what }, 'instance registered');
            }
            resolve();
          },
          (e: Error) => {
            const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(failures++, 10));
            o.log.warn({ service: o.service, id: o.id, registry: what, err: e.message, retryInMs: delay }, 'instance registration failed; retrying');
            const t = clock.setTimeout(() => {
              timers.delete(t);
              run();
            }, delay);
            timers.add(t);
          },
        );
      };
      run();
    });

  const waits: Promise<void>[] = [];
  if (o.etcdEndpoints && o.etcdEndpoints.length > 0) {
    const client = createEtcdClient(o.etcdEndpoints);
    closers.push(() => client.close());
    waits.push(keepTrying('etcd', () => registerInEtcd(client, o.service, { id: o.id, address: o.address, labels }, ttl, { log: o.log, clock })));
  }
  if (o.consulAgent) {
    const agent = o.consulAgent;
    waits.push(keepTrying('consul', () => registerInConsul(agent, o.service, { id: o.id, host: hp.host, port: hp.port, meta: labels }, ttl, { log: o.log, clock, deregisterAfterSeconds: Math.max(60, ttl * 6) })));
  }
  const ready = Promise.all(waits).then(() => undefined);
  return {
    ready,
    async stop() {
      stopped = true;
      for (const t of timers) clock.clearTimeout(t);
      timers.clear();
      for (const r of pending) r();
      await Promise.all(regs.splice(0).map((r) => r.stop().catch((e: Error) => o.log.warn({ service: o.service, id: o.id, err: e.message }, 'deregistration failed'))));
      for (const close of closers.splice(0)) close();
    },
  };
}
