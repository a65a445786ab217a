import { expect, it } from 'vitest';
import { isMeshError } from '../../core/errors.js';
import { ConcurrencyLimit } from './concurrency-limit.js';

it('admits up to max, refuses beyond, and admits again after a release', () => {
  const limit = new ConcurrencyLimit(2);
  expect(limit.tryAcquire()).toBe(true);
  expect(limit.tryAcquire()).toBe(true);
  expect(limit.tryAcquire()).toBe(false);
  expect(limit.inflight).toBe(2);
  limit.release();
  expect(limit.inflight).toBe(1);
  expect(limit.tryAcquire()).toBe(true);
});

it('max 0 refuses everything (maxPending: 0 = no waiting)', () => {
  const limit = new ConcurrencyLimit(0);
  expect(limit.tryAcquire()).toBe(false);
  expect(limit.inflight).toBe(0);
});

it('an extra release does not raise the limit', () => {
  const limit = new ConcurrencyLimit(1);
  limit.release();
  expect(limit.inflight).toBe(0);
  expect(limit.tryAcquire()).toBe(true);
  expect(limit.tryAcquire()).toBe(false);
});

it('refuses a negative or fractional max with a typed error', () => {
  for (const max of [-1, 1.5]) {
    let caught: unknown;
    try {
      new ConcurrencyLimit(max);
    } catch (e) {
      caught = e;
    }
    expect(isMeshError(caught, 'INTERNAL')).toBe(true);
  }
});
