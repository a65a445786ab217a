// What the control plane sends a sidecar (and what a standalone sidecar builds from its file):
// the validated config as written plus the endpoints known beyond it, with a content hash.
import { createHash } from 'node:crypto';
import type { MeshConfigInput } from './config/schema.js';

export type EndpointSource = 'static' | 'registered' | 'dns' | 'consul' | 'etcd';

export interface EndpointRecord {
  address: string;
  weight: number;
  labels: Record<string, string>;
  source: EndpointSource;
  /** Set by a discovery provider that could not refresh: the last good set is kept and marked stale. */
  stale?: boolean;
}

export interface Snapshot {
  /** The config version it was generated from ("3", or "file:<hash8>" when standalone). */
  version: string;
  /** sha256 of the canonical JSON of config + endpoints; a sidecar is pushed a snapshot only when it changed. */
  hash: string;
  config: MeshConfigInput;
  /** Endpoints beyond the static ones in config, by service (registered sidecars, discovery). */
  endpoints: Record<string, EndpointRecord[]>;
}

/** JSON with object keys sorted, so equal content always hashes equal. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(v as object)
    .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
}

export function snapshotHash(config: MeshConfigInput, endpoints: Record<string, EndpointRecord[]>): string {
  return createHash('sha256').update(canonicalJson({ config, endpoints })).digest('hex');
}

export function makeSnapshot(version: string, config: MeshConfigInput, endpoints: Record<string, EndpointRecord[]>): Snapshot {
  return { version, hash: snapshotHash(config, endpoints), config, endpoints };
}
