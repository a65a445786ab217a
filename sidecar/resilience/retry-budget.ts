// Retry budget as in Finagle's RetryBudget and linkerd2's retry budgets: retries may add at most
// `ratio` extra load on top of the original requests, plus a small floor (minPerSecond) so that
// low-traffic services can still retry. Unlike a fixed attempt count, it cannot multiply the load
// on a failing backend (retry storms). Counted over a sliding window bucketed by second.
import { systemClock, type Clock } from '../../core/clock.js';
import { meshError } from '../../core/errors.js';
import { SlidingWindow } from './sliding-window.js';

export interface RetryBudgetPolicy {
  readonly ratio: number;
  readonly minPerSecond: number;
  readonly windowMs: number;
}

// Guards the `≤` test against float sums such as 0.1 * 3 = 0.30000000000000004.
const EPSILON = 1e-9;

export class RetryBudget {
  readonly #ratio: number;
  readonly #floor: number;
  // first = original requests, second = retries withdrawn.
  readonly #window: SlidingWindow;

  constructor(policy: RetryBudgetPolicy, clock: Clock = systemClock) {
    const { ratio, minPerSecond, windowMs } = policy;
    if (!(ratio >= 0) || !(minPerSecond >= 0) || !(windowMs >= 0) || !Number.isFinite(ratio + minPerSecond + windowMs)) {
      // The config schema admits only finite non-negative values; anything else is a wiring bug.
      throw meshError('INTERNAL', 'retry budget needs finite ratio, minPerSecond and windowMs ≥ 0', { ratio, minPerSecond, windowMs });
    }
    this.#ratio = ratio;
    this.#floor = (minPerSecond * windowMs) / 1000;
    this.#window = new SlidingWindow(windowMs, Math.min(1000, windowMs), clock);
  }

  /** Call for every original request (not for retries). */
  recordRequest(): void {
    this.#window.add(1, 0);
  }

  /** A retry asks to go ahead. false = the budget is exhausted, and nothing was withdrawn. */
  tryWithdraw(): boolean {
    if (this.#window.second + 1 > this.#allowed() + EPSILON) return false;
    this.#window.add(0, 1);
    return true;
  }

  /** Retries still allowed in the current window (for /endpoints and metrics). */
  get remaining(): number {
    return Math.max(0, Math.floor(this.#allowed() + EPSILON - this.#window.second));
  }

  #allowed(): number {
    return this.#floor + this.#ratio * this.#window.first;
  }
}
