// Snapshot generation: a pure function of (config version, registered instances, discovered
// endpoints). Same inputs → same snapshot and hash, whatever order the inputs came in, so the push
// side can compare hashes to decide whether a sidecar needs anything.
//
// Snapshots are mesh-wide today (every sidecar may call every service), so the control plane
// generates one per change and shares it among all watchers; scoping a snapshot to the services a
// sidecar calls would add a sidecar argument here and a cache key in push.ts.
import { makeSnapshot, type EndpointRecord, type Snapshot } from '../core/snapshot.js';
import type { ConfigVersion, InstanceRecord } from './store/store.js';

export interface GenerateInput {
  config: Pick<ConfigVersion, 'version' | 'config'>;
  instances: readonly InstanceRecord[];
  /** From the discovery providers (control-plane/discovery/), by service; their complete current sets. */
  discovered: ReadonlyMap<string, readonly EndpointRecord[]>;
}

const byAddress = (a: EndpointRecord, b: EndpointRecord): number => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0);

export function generate(input: GenerateInput): Snapshot {
  const { config } = input.config;
  const endpoints: Record<string, EndpointRecord[]> = {};
  for (const [service, def] of Object.entries(config.services)) {
    // A static endpoint in the config wins over the same address registered or discovered.
    const seen = new Set((def.endpoints ?? []).map((e) => e.address));
    const records: EndpointRecord[] = [];
    const add = (r: EndpointRecord): void => {
      if (seen.has(r.address)) return;
      seen.add(r.address);
      records.push(r);
    };
    for (const i of input.instances) {
      if (i.service === service && i.address !== null) add({ address: i.address, weight: 1, labels: { ...i.labels }, source: 'registered' });
    }
    for (const r of input.discovered.get(service) ?? []) add({ ...r, labels: { ...r.labels } });
    // Instances of services the config does not name get no snapshot entry: nothing could route to them.
    if (records.length > 0) endpoints[service] = records.sort(byAddress);
  }
  return makeSnapshot(String(input.config.version), config, endpoints);
}
