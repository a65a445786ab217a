// Two counters over a sliding time window, in a ring of fixed buckets (Hystrix/resilience4j style):
// O(1) per call, no per-event allocation. The window covers the current bucket and the ones before
// it, so what counts spans between (buckets-1) and buckets bucket lengths back.
import type { Clock } from '../../core/clock.js';

export class SlidingWindow {
  readonly #clock: Clock;
  readonly #bucketMs: number;
  readonly #first: Float64Array;
  readonly #second: Float64Array;
  #head: number; // absolute bucket number (now / bucketMs) of the newest bucket
  #sumFirst = 0;
  #sumSecond = 0;

  constructor(windowMs: number, bucketMs: number, clock: Clock) {
    this.#clock = clock;
    this.#bucketMs = Math.max(1, bucketMs);
    const buckets = Math.max(1, Math.ceil(windowMs / this.#bucketMs));
    this.#first = new Float64Array(buckets);
    this.#second = new Float64Array(buckets);
    this.#head = Math.floor(clock.now() / this.#bucketMs);
  }

  add(first: number, second: number): void {
    const slot = this.#advance();
    this.#first[slot]! += first;
    this.#second[slot]! += second;
    this.#sumFirst += first;
    this.#sumSecond += second;
  }

  /** Sum of the first counter over the window. */
  get first(): number {
    this.#advance();
    return this.#sumFirst;
  }

  /** Sum of the second counter over the window. */
  get second(): number {
    this.#advance();
    return this.#sumSecond;
  }

  clear(): void {
    this.#first.fill(0);
    this.#second.fill(0);
    this.#sumFirst = 0;
    this.#sumSecond = 0;
  }

  /** Zeroes buckets that fell out of the window; returns the slot of the current bucket. */
  #advance(): number {
    const n = this.#first.length;
    const now = Math.floor(this.#clock.now() / this.#bucketMs);
    const gap = now - this.#head;
    if (gap >= n) {
      this.clear();
      this.#head = now;
    } else if (gap > 0) {
      // At most n-1 buckets per call: bounded by the window, not by how long we were idle.
      for (let b = this.#head + 1; b <= now; b++) {
        const slot = b % n;
        this.#sumFirst -= this.#first[slot]!;
        this.#sumSecond -= this.#second[slot]!;
        this.#first[slot] = 0;
        this.#second[slot] = 0;
      }
      this.#head = now;
    }
    // A clock that went backwards (gap < 0) keeps writing into the newest bucket.
    return this.#head % n;
  }
}
