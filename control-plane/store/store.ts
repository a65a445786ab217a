// The control plane's durable state behind one small async interface: versioned mesh config with
// history, and the registry of sidecar instances. Implemented by the embedded file store
// (file-store.ts) and the etcd store (etcd-store.ts, for an HA control plane). Config validation
// happens before put(): a store only ever holds configs that passed parseMeshConfig().
import type { MeshConfigInput } from '../../core/config/schema.js';

/** One accepted config. Versions are 1, 2, 3… and never reused; a rollback is a new version. */
export interface ConfigVersion {
  readonly version: number;
  /** The validated config (schema input form, before defaults), as pushed to sidecars. */
  readonly config: MeshConfigInput;
  /** The text as submitted (YAML or JSON), so `ctl get config` shows the author's comments and order. */
  readonly text: string;
  readonly author: string;
  readonly note: string;
  /** Wall-clock time of acceptance, ISO 8601. */
  readonly createdAt: string;
  /** Set when this version was made by rolling back to an older one. */
  readonly rollbackOf?: number;
}

export interface ConfigWrite {
  config: MeshConfigInput;
  text: string;
  author: string;
  note: string;
  rollbackOf?: number;
}

export interface InstanceRegistration {
  /** Stable per sidecar (the sidecar derives it from service + inbound address unless given). */
  id: string;
  service: string;
  /** host:port peers should call (the sidecar's inbound listener); null for a sidecar with no app behind it (a client only), which watches config but is no endpoint. */
  address: string | null;
  labels: Record<string, string>;
  /** host:port of the sidecar's admin listener. */
  adminAddress: string;
}

export interface InstanceRecord extends InstanceRegistration {
  /** The instance disappears when no heartbeat arrives within this time. */
  readonly ttlMs: number;
  /** Wall-clock times, ISO 8601. */
  readonly registeredAt: string;
  readonly lastHeartbeatAt: string;
}

/**
 * What changed. Delivered for every change, whether this replica made it or another one did (etcd
 * watch), so one code path regenerates and pushes snapshots.
 */
export type StoreEvent = { kind: 'config'; version: number } | { kind: 'instances' };

export interface Store {
  /** The current config, or undefined while the store is empty. */
  current(): Promise<ConfigVersion | undefined>;
  /** A version still in history; undefined when unknown or pruned. */
  get(version: number): Promise<ConfigVersion | undefined>;
  /** Newest first, at most `limit` (default: all kept). */
  history(limit?: number): Promise<ConfigVersion[]>;
  /**
   * Compare-and-set: stores `write` as version current+1 when `expectedVersion` is undefined or equals
   * the current version (0 when empty); otherwise throws MeshError CONFLICT with details
   * { expectedVersion, currentVersion }. Resolves once the version is durable.
   */
  put(write: ConfigWrite, expectedVersion?: number): Promise<ConfigVersion>;
  /**
   * Makes an old version's content current again, as a new version (CAS like put). Throws NOT_FOUND
   * when the version is not in history.
   */
  rollback(version: number, meta: { author: string; note: string }, expectedVersion?: number): Promise<ConfigVersion>;

  /** Live instances (expired ones are gone). */
  instances(): Promise<InstanceRecord[]>;
  /** Registers or re-registers (same id replaces) an instance that lives `ttlMs` without heartbeat. */
  register(instance: InstanceRegistration, ttlMs: number): Promise<InstanceRecord>;
  /** Extends the instance's life by its TTL. Throws NOT_FOUND when unknown or already expired (re-register then). */
  heartbeat(id: string): Promise<InstanceRecord>;
  /** Removes an instance now. Resolves false when it was not registered. */
  deregister(id: string): Promise<boolean>;

  /** Calls `listener` after every change (config or instances, from any replica). Returns unsubscribe. */
  subscribe(listener: (e: StoreEvent) => void): () => void;
  close(): Promise<void>;
}
