import { expect, it } from 'vitest';
import { FakeClock } from '../../core/clock.js';
import { SlidingWindow } from './sliding-window.js';

it('sums the buckets still in the window and drops the ones that slid out', () => {
  const clock = new FakeClock(0);
  const w = new SlidingWindow(3_000, 1_000, clock);
  w.add(1, 0); // bucket 0
  clock.advance(1_000);
  w.add(2, 1); // bucket 1
  clock.advance(1_000);
  w.add(4, 2); // bucket 2
  expect([w.first, w.second]).toEqual([7, 3]);
  clock.advance(1_000); // bucket 0 out
  expect([w.first, w.second]).toEqual([6, 3]);
  clock.advance(1_000); // bucket 1 out
  expect([w.first, w.second]).toEqual([4, 2]);
  clock.advance(10_000);
  expect([w.first, w.second]).toEqual([0, 0]);
  w.add(1, 1);
  expect([w.first, w.second]).toEqual([1, 1]);
});

it('clear() empties it', () => {
  const w = new SlidingWindow(1_000, 100, new FakeClock());
  w.add(3, 3);
  w.clear();
  expect([w.first, w.second]).toEqual([0, 0]);
});
