import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../core/clock.js';
import type { CircuitBreakerPolicy } from '../../core/config/normalize.js';
import { isMeshError } from '../../core/errors.js';
import { CircuitBreaker, type BreakerState } from './circuit-breaker.js';
import { EjectionCap } from './ejection-cap.js';

const POLICY: CircuitBreakerPolicy = {
  consecutiveFailures: 3,
  failureRate: null,
  openForMs: 1_000,
  maxOpenForMs: 5_000,
  halfOpenProbes: 2,
  maxEjectionPercent: 100,
};

function setup(policy: Partial<CircuitBreakerPolicy> = {}, extra: { mayEject?: () => boolean; ejectionCap?: EjectionCap } = {}) {
  const clock = new FakeClock();
  const transitions: string[] = [];
  const breaker = new CircuitBreaker({
    policy: { ...POLICY, ...policy },
    clock,
    ...extra,
    onStateChange: (from: BreakerState, to: BreakerState) => transitions.push(`${from}>${to}`),
  });
  const fail = (n: number) => {
    for (let i = 0; i < n; i++) breaker.onFailure(breaker.onRequestStart());
  };
  const succeed = (n: number) => {
    for (let i = 0; i < n; i++) breaker.onSuccess(breaker.onRequestStart());
  };
  return { clock, breaker, transitions, fail, succeed };
}

describe('tripping', () => {
  it('trips after consecutiveFailures failures in a row, not before', () => {
    const { breaker, fail } = setup();
    fail(2);
    expect(breaker.state).toBe('closed');
    expect(breaker.isAvailable()).toBe(true);
    fail(1);
    expect(breaker.state).toBe('open');
    expect(breaker.isAvailable()).toBe(false);
    expect(breaker.ejections).toBe(1);
  });

  it('a success in between resets the run of failures', () => {
    const { breaker, fail, succeed } = setup();
    fail(2);
    succeed(1);
    fail(2);
    expect(breaker.state).toBe('closed');
    expect(breaker.snapshot().consecutiveFailures).toBe(2);
  });

  it('trips on failure rate only once minRequests results are in the window', () => {
    const { breaker, fail, succeed } = setup({ consecutiveFailures: 0, failureRate: { threshold: 0.5, windowMs: 10_000, minRequests: 10 } });
    // 4 failures of 8 results = 50 %, but fewer than 10 requests: stays closed.
    for (let i = 0; i < 4; i++) {
      succeed(1);
      fail(1);
    }
    expect(breaker.state).toBe('closed');
    expect(breaker.snapshot().failureRate).toBe(0.5);
    succeed(1); // 9 results, 4 failures
    expect(breaker.state).toBe('closed');
    fail(1); // 10 results, 5 failures = 50 % ≥ threshold
    expect(breaker.state).toBe('open');
  });

  it('does not trip on a failure rate below the threshold', () => {
    const { breaker, fail, succeed } = setup({ consecutiveFailures: 0, failureRate: { threshold: 0.5, windowMs: 10_000, minRequests: 10 } });
    for (let i = 0; i < 20; i++) {
      succeed(2);
      fail(1);
    }
    expect(breaker.state).toBe('closed');
  });

  it('forgets failures that slid out of the failure-rate window', () => {
    const { clock, breaker, fail, succeed } = setup({ consecutiveFailures: 0, failureRate: { threshold: 0.5, windowMs: 10_000, minRequests: 10 } });
    fail(9);
    clock.advance(11_000);
    succeed(9);
    fail(1); // only 1 failure of 10 in the window now
    expect(breaker.state).toBe('closed');
    expect(breaker.snapshot().failureRate).toBeCloseTo(0.1);
  });
});

describe('open, half-open, closed', () => {
  it('turns half-open once openFor has passed', () => {
    const { clock, breaker, fail } = setup();
    fail(3);
    expect(breaker.openUntil).toBe(clock.now() + 1_000);
    clock.advance(999);
    expect(breaker.isAvailable()).toBe(false);
    expect(breaker.state).toBe('open');
    clock.advance(1);
    expect(breaker.isAvailable()).toBe(true);
    expect(breaker.state).toBe('half-open');
    expect(breaker.openUntil).toBeUndefined();
  });

  it('half-open admits only halfOpenProbes concurrent probes; a cancel frees a slot', () => {
    const { clock, breaker, fail } = setup();
    fail(3);
    clock.advance(1_000);
    const first = breaker.onRequestStart();
    expect(breaker.isAvailable()).toBe(true);
    breaker.onRequestStart();
    expect(breaker.isAvailable()).toBe(false);
    breaker.onCancel(first);
    expect(breaker.isAvailable()).toBe(true);
    expect(breaker.state).toBe('half-open');
  });

  it('closes after halfOpenProbes successful probes', () => {
    const { clock, breaker, fail } = setup();
    fail(3);
    clock.advance(1_000);
    const a = breaker.onRequestStart();
    const b = breaker.onRequestStart();
    breaker.onSuccess(a);
    expect(breaker.state).toBe('half-open');
    breaker.onSuccess(b);
    expect(breaker.state).toBe('closed');
    expect(breaker.snapshot().consecutiveFailures).toBe(0);
  });

  it('a failed probe reopens with a doubled duration, capped at maxOpenFor', () => {
    const { clock, breaker, fail } = setup();
    fail(3);
    const durations: number[] = [];
    for (let i = 0; i < 5; i++) {
      clock.advance(breaker.openUntil! - clock.now());
      expect(breaker.state).toBe('half-open');
      fail(1);
      expect(breaker.state).toBe('open');
      durations.push(breaker.openUntil! - clock.now());
    }
    expect(durations).toEqual([2_000, 4_000, 5_000, 5_000, 5_000]);
    expect(breaker.ejections).toBe(6);
  });

  it('a trip soon after closing keeps growing; after staying closed for maxOpenFor it starts over', () => {
    const { clock, breaker, fail, succeed } = setup();
    const recover = () => {
      clock.advance(breaker.openUntil! - clock.now());
      succeed(2);
      expect(breaker.state).toBe('closed');
    };
    fail(3);
    recover();
    fail(3);
    expect(breaker.openUntil! - clock.now()).toBe(2_000);
    recover();
    clock.advance(5_000);
    fail(3);
    expect(breaker.openUntil! - clock.now()).toBe(1_000);
  });

  it('ignores results of requests that started before the last transition', () => {
    const { clock, breaker, fail } = setup();
    const slow = breaker.onRequestStart(); // sent while closed
    fail(3);
    clock.advance(1_000);
    const probe = breaker.onRequestStart();
    breaker.onFailure(slow); // arrives in half-open: not a probe result
    expect(breaker.state).toBe('half-open');
    breaker.onSuccess(probe);
    breaker.onSuccess(breaker.onRequestStart());
    expect(breaker.state).toBe('closed');
  });

  it('reports every transition to onStateChange', () => {
    const { clock, breaker, fail, succeed, transitions } = setup();
    fail(3);
    clock.advance(1_000);
    fail(1);
    clock.advance(2_000);
    succeed(2);
    expect(transitions).toEqual(['closed>open', 'open>half-open', 'half-open>open', 'open>half-open', 'half-open>closed']);
  });
});

describe('ejection cap', () => {
  it('stays closed while mayEject says no, and trips on the next failure once allowed', () => {
    let allowed = false;
    const { breaker, fail, transitions } = setup({}, { mayEject: () => allowed });
    fail(5);
    expect(breaker.state).toBe('closed');
    expect(breaker.snapshot().consecutiveFailures).toBe(5);
    expect(transitions).toEqual([]);
    allowed = true;
    fail(1);
    expect(breaker.state).toBe('open');
  });

  it('with a shared EjectionCap, ejects one endpoint of two at 50 % and gives the slot back on close', () => {
    const cap = new EjectionCap(50);
    cap.total = 2;
    const clock = new FakeClock();
    const a = new CircuitBreaker({ policy: POLICY, clock, ejectionCap: cap });
    const b = new CircuitBreaker({ policy: POLICY, clock, ejectionCap: cap });
    for (let i = 0; i < 3; i++) a.onFailure(a.onRequestStart());
    for (let i = 0; i < 3; i++) b.onFailure(b.onRequestStart());
    expect([a.state, b.state]).toEqual(['open', 'closed']);
    expect(cap.ejected).toBe(1);
    clock.advance(1_000);
    for (let i = 0; i < 2; i++) a.onSuccess(a.onRequestStart());
    expect(a.state).toBe('closed');
    expect(cap.ejected).toBe(0);
    b.onFailure(b.onRequestStart());
    expect(b.state).toBe('open');
    b.dispose();
    expect(cap.ejected).toBe(0);
  });
});

it('refuses a policy with no half-open probes with a typed error', () => {
  let caught: unknown;
  try {
    new CircuitBreaker({ policy: { ...POLICY, halfOpenProbes: 0 } });
  } catch (e) {
    caught = e;
  }
  expect(isMeshError(caught, 'INTERNAL')).toBe(true);
});
