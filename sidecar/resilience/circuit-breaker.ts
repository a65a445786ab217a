// Per-endpoint breaker: Envoy's outlier detection (eject after consecutive failures, ejection time
// growing with repeated ejections, capped share of ejected hosts) plus linkerd's failure accrual
// (failure rate over a sliding window) and cockatiel's half-open probes, in one state machine:
//   closed --trip--> open --openFor elapsed--> half-open --N probe successes--> closed
//                      ^------------------ any probe failure ------------------'
// Open lasts openForMs * 2^(trips-1), capped at maxOpenForMs. The trip count goes back to zero once
// the breaker has stayed closed for maxOpenForMs, so an endpoint that recovered for good starts over.
import { systemClock, type Clock } from '../../core/clock.js';
import type { CircuitBreakerPolicy } from '../../core/config/normalize.js';
import { meshError } from '../../core/errors.js';
import type { BreakerState } from '../../core/telemetry/observer.js';
import type { EjectionCap } from './ejection-cap.js';
import { SlidingWindow } from './sliding-window.js';

export type { BreakerState };

export interface CircuitBreakerOptions {
  policy: CircuitBreakerPolicy;
  clock?: Clock;
  /** Asked before tripping closed→open: false when the service's ejection cap (maxEjectionPercent) is reached. */
  mayEject?: () => boolean;
  /**
   * Shorthand for the service's shared cap: used as mayEject when that is not given, and told of
   * every ejection (closed→open) and restoration (→closed, or dispose() while ejected).
   */
  ejectionCap?: EjectionCap;
  onStateChange?: (from: BreakerState, to: BreakerState) => void;
}

export interface BreakerSnapshot {
  state: BreakerState;
  consecutiveFailures: number;
  ejections: number;
  openUntil?: number;
  failureRate?: number;
}

/** Identifies the breaker period a request started in; see onRequestStart(). */
export type BreakerToken = number;

// Buckets per failure-rate window: fine enough that old failures fade out smoothly.
const RATE_BUCKETS = 10;

export class CircuitBreaker {
  readonly #policy: CircuitBreakerPolicy;
  readonly #clock: Clock;
  readonly #mayEject: (() => boolean) | undefined;
  readonly #cap: EjectionCap | undefined;
  readonly #onStateChange: ((from: BreakerState, to: BreakerState) => void) | undefined;
  // first = requests with a verdict, second = failures; only while closed.
  readonly #window: SlidingWindow | undefined;

  #state: BreakerState = 'closed';
  // Bumped on every transition, so results of requests started in an earlier period are told apart.
  #epoch = 0;
  #consecutiveFailures = 0;
  #trips = 0; // trips since the breaker last stayed closed for maxOpenForMs; drives the open duration
  #ejections = 0;
  #openUntil: number | undefined;
  #closedSince: number;
  #probesInFlight = 0;
  #probeSuccesses = 0;

  constructor(opts: CircuitBreakerOptions) {
    const p = opts.policy;
    if (!(p.halfOpenProbes >= 1) || !(p.openForMs >= 0) || !(p.maxOpenForMs >= 0) || !(p.consecutiveFailures >= 0)) {
      // normalize.ts guarantees these; anything else is a wiring bug.
      throw meshError('INTERNAL', 'circuit breaker policy needs halfOpenProbes ≥ 1 and non-negative durations and counts', { policy: p });
    }
    this.#policy = p;
    this.#clock = opts.clock ?? systemClock;
    this.#cap = opts.ejectionCap;
    this.#mayEject = opts.mayEject ?? (opts.ejectionCap ? () => opts.ejectionCap!.mayEject() : undefined);
    this.#onStateChange = opts.onStateChange;
    this.#window = p.failureRate ? new SlidingWindow(p.failureRate.windowMs, p.failureRate.windowMs / RATE_BUCKETS, this.#clock) : undefined;
    this.#closedSince = this.#clock.now();
  }

  /** Reading it moves open → half-open once openUntil has passed. */
  get state(): BreakerState {
    this.#refresh();
    return this.#state;
  }

  /** Times it tripped (closed → open and half-open → open). */
  get ejections(): number {
    return this.#ejections;
  }

  /** Clock ms when an open breaker turns half-open; undefined unless open. */
  get openUntil(): number | undefined {
    return this.#state === 'open' ? this.#openUntil : undefined;
  }

  /** Side-effect free: could a request be sent now? */
  isAvailable(): boolean {
    switch (this.#state) {
      case 'closed':
        return true;
      case 'open':
        // Its time is up: the next onRequestStart() makes it half-open and this request the first probe.
        return this.#clock.now() >= this.#openUntil!;
      case 'half-open':
        return this.#probesInFlight < this.#policy.halfOpenProbes;
    }
  }

  /**
   * Call when a request is actually sent to the endpoint. Returns a token to hand back to
   * onSuccess/onFailure/onCancel: results of requests started before the last transition (e.g. a
   * slow request sent while closed that ends while half-open) are then ignored instead of being
   * taken for probe results. Without the token, a result counts against the current state.
   */
  onRequestStart(): BreakerToken {
    this.#refresh();
    if (this.#state === 'half-open') this.#probesInFlight++;
    return this.#epoch;
  }

  /** A response that is not a failure. */
  onSuccess(token?: BreakerToken): void {
    if (!this.#current(token)) return;
    if (this.#state === 'closed') {
      this.#consecutiveFailures = 0;
      this.#window?.add(1, 0);
    } else if (this.#state === 'half-open' && this.#releaseProbe()) {
      if (++this.#probeSuccesses >= this.#policy.halfOpenProbes) this.#close();
    }
  }

  /** Connect failure, reset, timeout, 5xx: the caller decides what counts. */
  onFailure(token?: BreakerToken): void {
    if (!this.#current(token)) return;
    if (this.#state === 'closed') {
      this.#consecutiveFailures++;
      this.#window?.add(1, 1);
      if (this.#shouldTrip() && (this.#mayEject === undefined || this.#mayEject())) {
        if (this.#clock.now() - this.#closedSince >= this.#policy.maxOpenForMs) this.#trips = 0;
        this.#cap?.onEject();
        this.#open();
      }
    } else if (this.#state === 'half-open' && this.#releaseProbe()) {
      this.#open(); // still ejected in the cap's eyes: no new onEject()
    }
  }

  /** A request that ended with no verdict (client aborted): frees its half-open probe slot. */
  onCancel(token?: BreakerToken): void {
    if (!this.#current(token)) return;
    if (this.#state === 'half-open') this.#releaseProbe();
  }

  /** The endpoint left the set: give its ejection back to the shared cap. */
  dispose(): void {
    if (this.#state !== 'closed') this.#cap?.onRestore();
    this.#state = 'closed';
    this.#epoch++;
  }

  snapshot(): BreakerSnapshot {
    const s: BreakerSnapshot = { state: this.state, consecutiveFailures: this.#consecutiveFailures, ejections: this.#ejections };
    if (this.#state === 'open') s.openUntil = this.#openUntil;
    if (this.#window) {
      const requests = this.#window.first;
      if (requests > 0) s.failureRate = this.#window.second / requests;
    }
    return s;
  }

  #shouldTrip(): boolean {
    const { consecutiveFailures, failureRate } = this.#policy;
    if (consecutiveFailures > 0 && this.#consecutiveFailures >= consecutiveFailures) return true;
    if (!failureRate || !this.#window) return false;
    const requests = this.#window.first;
    return requests >= failureRate.minRequests && this.#window.second >= failureRate.threshold * requests;
  }

  #current(token: BreakerToken | undefined): boolean {
    this.#refresh();
    return token === undefined || token === this.#epoch;
  }

  /** Frees a probe slot; false when none was taken (a result with no matching start). */
  #releaseProbe(): boolean {
    if (this.#probesInFlight === 0) return false;
    this.#probesInFlight--;
    return true;
  }

  #refresh(): void {
    if (this.#state === 'open' && this.#clock.now() >= this.#openUntil!) {
      this.#probesInFlight = 0;
      this.#probeSuccesses = 0;
      this.#transition('half-open');
    }
  }

  #open(): void {
    this.#trips++;
    this.#ejections++;
    const duration = Math.min(this.#policy.maxOpenForMs, this.#policy.openForMs * 2 ** Math.min(this.#trips - 1, 52));
    this.#openUntil = this.#clock.now() + duration;
    this.#transition('open');
  }

  #close(): void {
    this.#consecutiveFailures = 0;
    this.#window?.clear(); // failures from before the ejection must not trip it again at once
    this.#closedSince = this.#clock.now();
    this.#openUntil = undefined;
    this.#cap?.onRestore();
    this.#transition('closed');
  }

  #transition(to: BreakerState): void {
    const from = this.#state;
    this.#state = to;
    this.#epoch++;
    this.#onStateChange?.(from, to);
  }
}
