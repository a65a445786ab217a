// GET /v1/stats: every known sidecar's request counters and latency buckets, read from its admin
// /metrics now. The control plane does the reading because it is the one component that knows every
// sidecar's admin address (they register it) and can usually reach them; `meshlet ctl` may run
// anywhere. It keeps no state and scrapes nothing in the background: nobody asking costs nothing.
// Rates need two samples: ctl takes them an interval apart and computes the figures
// (core/telemetry/traffic-stats.ts), per sidecar, so a restarted sidecar does not skew the sums.
import { scrapeSidecars, type SidecarTarget, type TrafficSample } from '../core/telemetry/traffic-stats.js';

/** A sidecar as GET /v1/sidecars lists it; id, service, adminAddress and registered are read. */
export type ListedSidecar = Readonly<Record<string, unknown>>;

export function statsTargets(sidecars: readonly ListedSidecar[]): SidecarTarget[] {
  return sidecars
    .filter((s) => typeof s.adminAddress === 'string' && s.adminAddress !== '' && s.registered !== false)
    .map((s) => ({ id: String(s.id), service: typeof s.service === 'string' ? s.service : null, adminAddress: s.adminAddress as string }));
}

export async function collectStats(sidecars: readonly ListedSidecar[], opts: { timeoutMs?: number } = {}): Promise<TrafficSample> {
  return scrapeSidecars(statsTargets(sidecars), { timeoutMs: opts.timeoutMs ?? 2_000 });
}
