// Connection pools by endpoint address, shared across snapshots: a pool is kept while the snapshot in
// force uses it and closed gracefully (after its requests finish) once a newer snapshot does not.
import { UpstreamPool, type UpstreamPoolOptions } from './upstream/upstream-pool.js';

export class PoolRegistry {
  #pools = new Map<string, UpstreamPool>();

  /** The pool for `address` with these options (a new one when the options changed). */
  acquire(address: string, options: UpstreamPoolOptions): UpstreamPool {
    const key = `${address}|${options.connections}|${options.connectTimeoutMs}`;
    let pool = this.#pools.get(key);
    if (!pool) {
      pool = new UpstreamPool(address, options);
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** After a snapshot swap: closes every pool the new snapshot does not use. */
  retainOnly(inUse: ReadonlySet<UpstreamPool>): void {
    for (const [key, pool] of this.#pools) {
      if (!inUse.has(pool)) {
        this.#pools.delete(key);
        void pool.close().catch(() => {});
      }
    }
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.close().catch(() => {})));
    this.#pools.clear();
  }
}
