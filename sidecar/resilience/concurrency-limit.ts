// Envoy's "circuit breaker" thresholds (max_requests, max_pending_requests): a plain counter that
// refuses work beyond `max` instead of queueing it, so overload fails fast with OVERFLOW.
import { meshError } from '../../core/errors.js';

export class ConcurrencyLimit {
  readonly max: number;
  #inflight = 0;

  constructor(max: number) {
    if (!(Number.isInteger(max) && max >= 0)) throw meshError('INTERNAL', `concurrency limit must be an integer ≥ 0, got ${max}`, { max });
    this.max = max;
  }

  /** Takes a slot; false (and nothing taken) when `max` are in use. Pair every true with one release(). */
  tryAcquire(): boolean {
    if (this.#inflight >= this.max) return false;
    this.#inflight++;
    return true;
  }

  release(): void {
    // Never below zero: a double release must not raise the limit for everyone after it.
    if (this.#inflight > 0) this.#inflight--;
  }

  get inflight(): number {
    return this.#inflight;
  }
}
