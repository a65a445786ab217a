// The care every provider takes before it changes a service's endpoint set (go-kit's endpoint cache):
// - a good answer replaces the set (the complete set, every time);
// - an error keeps the last good set, marked stale, for as long as the errors last;
// - an empty answer after a non-empty one is not believed at once: the last good set is kept
//   (stale) until answers have stayed empty for `emptyGraceMs`, because a registry that briefly
//   answers "nothing" (a restarting DNS server, a Consul agent losing its catalog) must not drop
//   every endpoint of a service. A non-empty answer or an error in between cancels the count.
import type { Clock, TimerHandle } from '../../core/clock.js';
import type { EndpointRecord, EndpointSource } from '../../core/snapshot.js';
import type { Logger } from '../../core/log.js';
import type { DiscoveryUpdate } from './provider.js';

export interface LastGoodSetOptions {
  service: string;
  source: EndpointSource;
  clock: Clock;
  emptyGraceMs: number;
  log: Logger;
  onUpdate: (u: DiscoveryUpdate) => void;
  /** Wall time for updatedAt (display only; all logic uses `clock`). */
  wallNow?: () => number;
}

export class LastGoodSet {
  #o: LastGoodSetOptions;
  #good: EndpointRecord[] | null = null;
  #updatedAt = 0;
  #emptyTimer: TimerHandle | null = null;
  #last: DiscoveryUpdate | null = null;
  #stopped = false;

  constructor(o: LastGoodSetOptions) {
    this.#o = o;
  }

  /** The last update pushed, if any. */
  get last(): DiscoveryUpdate | null {
    return this.#last;
  }

  /** A successful answer from the registry: the complete set of the service's instances. */
  answer(endpoints: EndpointRecord[]): void {
    if (this.#stopped) return;
    const fresh = sortEndpoints(endpoints.map((e) => ({ ...e, source: this.#o.source, stale: undefined })));
    if (fresh.length === 0 && this.#good !== null && this.#good.length > 0 && this.#o.emptyGraceMs > 0) {
      if (this.#emptyTimer === null) {
        this.#o.log.warn({ service: this.#o.service, source: this.#o.source, kept: this.#good.length, graceMs: this.#o.emptyGraceMs }, 'discovery answered an empty set; keeping the last good set until it persists');
        this.#emptyTimer = this.#o.clock.setTimeout(() => {
          this.#emptyTimer = null;
          this.#o.log.warn({ service: this.#o.service, source: this.#o.source }, 'empty discovery answer persisted; the service has no discovered endpoints');
          this.#accept([]);
        }, this.#o.emptyGraceMs);
      }
      this.#push(this.#staleCopy(), true, `empty answer after ${this.#good.length} endpoint(s); kept until it persists for ${this.#o.emptyGraceMs}ms`);
      return;
    }
    this.#cancelEmpty();
    this.#accept(fresh);
  }

  /** The registry could not be asked or answered garbage: keep the last good set, marked stale. */
  error(err: unknown): void {
    if (this.#stopped) return;
    this.#cancelEmpty();
    const message = err instanceof Error ? err.message : String(err);
    if (this.#last?.error !== message) this.#o.log.warn({ service: this.#o.service, source: this.#o.source, err: message, kept: this.#good?.length ?? 0 }, 'discovery failed; keeping the last good set');
    this.#push(this.#staleCopy(), true, message);
  }

  stop(): void {
    this.#stopped = true;
    this.#cancelEmpty();
  }

  #accept(endpoints: EndpointRecord[]): void {
    this.#good = endpoints;
    this.#updatedAt = (this.#o.wallNow ?? Date.now)();
    this.#push(endpoints, false, undefined);
  }

  #staleCopy(): EndpointRecord[] {
    return (this.#good ?? []).map((e) => ({ ...e, stale: true }));
  }

  #cancelEmpty(): void {
    if (this.#emptyTimer !== null) this.#o.clock.clearTimeout(this.#emptyTimer);
    this.#emptyTimer = null;
  }

  #push(endpoints: EndpointRecord[], stale: boolean, error: string | undefined): void {
    const u: DiscoveryUpdate = { service: this.#o.service, endpoints, stale, updatedAt: this.#updatedAt, ...(error !== undefined ? { error } : {}) };
    this.#last = u;
    this.#o.onUpdate(u);
  }
}

/** Stable order (by address) so equal sets compare and hash equal. Drops `stale: undefined`. */
export function sortEndpoints(endpoints: EndpointRecord[]): EndpointRecord[] {
  return endpoints
    .map((e) => {
      const { stale, ...rest } = e;
      return stale ? { ...rest, stale } : rest;
    })
    .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}
