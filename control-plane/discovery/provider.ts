// A discovery provider watches one registry for one service and pushes the COMPLETE endpoint set on
// every change (go-kit's Instancer). Errors and suspicious empty answers keep the last good set,
// marked stale (see last-good-set.ts). createProvider builds one provider per kind configured.
import type { Etcd3 } from 'etcd3';
import { systemClock, type Clock } from '../../core/clock.js';
import type { ServiceConfig } from '../../core/config/normalize.js';
import { parseDuration } from '../../core/duration.js';
import type { Logger } from '../../core/log.js';
import type { EndpointRecord } from '../../core/snapshot.js';
import { ConsulProvider } from './consul.js';
import { DnsProvider } from './dns.js';
import { EtcdProvider } from './etcd.js';

export interface DiscoveryUpdate {
  service: string;
  endpoints: EndpointRecord[];
  /** True while the registry cannot be read (or answered a not-yet-believed empty set): endpoints are the last good ones. */
  stale: boolean;
  error?: string;
  /** Wall-clock ms of the last good answer (0 if none yet). */
  updatedAt: number;
}

export interface DiscoveryProvider {
  /** Which registry this provider reads. */
  readonly source: 'dns' | 'consul' | 'etcd';
  start(onUpdate: (u: DiscoveryUpdate) => void): void;
  stop(): Promise<void>;
}

export type DiscoverySpec = NonNullable<ServiceConfig['discovery']>;

export interface ProviderOptions {
  log: Logger;
  clock?: Clock;
  /** etcd client URLs to use when the spec names none (the control plane's own, with --store etcd). */
  etcdEndpoints?: string[];
  /** Shared etcd clients by endpoint list (the hub passes one, so services share connections); else one per provider. */
  etcdClient?: (endpoints: readonly string[]) => Etcd3;
}

/** Default of discovery.emptyGrace. */
export const DEFAULT_EMPTY_GRACE_MS = 10_000;

export function createProvider(service: string, spec: DiscoverySpec, opts: ProviderOptions): DiscoveryProvider[] {
  const clock = opts.clock ?? systemClock;
  const emptyGraceMs = spec.emptyGrace === undefined ? DEFAULT_EMPTY_GRACE_MS : (parseDuration(spec.emptyGrace) ?? DEFAULT_EMPTY_GRACE_MS);
  const common = { log: opts.log.child({ service }), clock, emptyGraceMs };
  const out: DiscoveryProvider[] = [];
  if (spec.dns) out.push(new DnsProvider(service, spec.dns, common));
  if (spec.consul) out.push(new ConsulProvider(service, spec.consul, common));
  if (spec.etcd) {
    const endpoints = spec.etcd.endpoints ?? opts.etcdEndpoints ?? [];
    const client = endpoints.length > 0 ? opts.etcdClient?.(endpoints) : undefined;
    out.push(new EtcdProvider(service, spec.etcd, { ...common, endpoints, ...(client ? { client } : {}) }));
  }
  return out;
}
