import { expect, it } from 'vitest';
import { FakeClock } from '../../core/clock.js';
import { isMeshError } from '../../core/errors.js';
import { RetryBudget } from './retry-budget.js';

function drain(budget: RetryBudget, limit = 10_000): number {
  let n = 0;
  while (n < limit && budget.tryWithdraw()) n++;
  return n;
}

it('minPerSecond allows retries with no traffic at all', () => {
  const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 2, windowMs: 5_000 }, new FakeClock());
  expect(drain(budget)).toBe(10); // 2/s × 5 s
  expect(budget.remaining).toBe(0);
});

it('ratio scales the allowance with the number of requests', () => {
  const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 0, windowMs: 10_000 }, new FakeClock());
  expect(budget.tryWithdraw()).toBe(false);
  for (let i = 0; i < 50; i++) budget.recordRequest();
  expect(drain(budget)).toBe(10);
  for (let i = 0; i < 50; i++) budget.recordRequest();
  expect(drain(budget)).toBe(10);
});

it('an exhausted budget answers false without withdrawing anything', () => {
  const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 0, windowMs: 10_000 }, new FakeClock());
  for (let i = 0; i < 4; i++) budget.recordRequest();
  expect(drain(budget)).toBe(2);
  for (let i = 0; i < 5; i++) expect(budget.tryWithdraw()).toBe(false);
  // Had the refusals been withdrawn, two more requests (one more retry) would not be enough.
  budget.recordRequest();
  budget.recordRequest();
  expect(budget.tryWithdraw()).toBe(true);
  expect(budget.tryWithdraw()).toBe(false);
});

it('the window slides: old requests and old retries stop counting', () => {
  const clock = new FakeClock(0);
  const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, windowMs: 3_000 }, clock);
  for (let i = 0; i < 6; i++) budget.recordRequest();
  expect(drain(budget)).toBe(6);
  clock.advance(1_000);
  for (let i = 0; i < 2; i++) budget.recordRequest();
  expect(drain(budget)).toBe(2);
  clock.advance(2_000); // the first second's 6 requests and 6 retries slid out
  expect(drain(budget)).toBe(0);
  for (let i = 0; i < 3; i++) budget.recordRequest();
  expect(drain(budget)).toBe(3);
  clock.advance(60_000); // idle far longer than the window: everything is forgotten
  expect(budget.tryWithdraw()).toBe(false);
});

it('copes with float ratios (0.1 × 30 requests = 3 retries)', () => {
  const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 0, windowMs: 10_000 }, new FakeClock());
  for (let i = 0; i < 30; i++) budget.recordRequest();
  expect(drain(budget)).toBe(3);
});

it('refuses a negative ratio with a typed error', () => {
  let caught: unknown;
  try {
    new RetryBudget({ ratio: -1, minPerSecond: 0, windowMs: 1_000 });
  } catch (e) {
    caught = e;
  }
  expect(isMeshError(caught, 'INTERNAL')).toBe(true);
});
