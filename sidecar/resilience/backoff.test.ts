import { expect, it } from 'vitest';
import { backoffDelay } from './backoff.js';

it('stays within [0, min(max, base × 2^(n-1))) over many draws', () => {
  let seed = 12345;
  const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
  for (let retry = 1; retry <= 8; retry++) {
    const ceiling = Math.min(250, 25 * 2 ** (retry - 1));
    for (let i = 0; i < 500; i++) {
      const d = backoffDelay(retry, 25, 250, random);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(ceiling);
    }
  }
});

it('the ceiling doubles per retry until max (random pinned just below 1)', () => {
  const nearlyOne = () => 0.999999;
  const ceilings = [1, 2, 3, 4, 5, 6].map((n) => Math.round(backoffDelay(n, 25, 250, nearlyOne)));
  expect(ceilings).toEqual([25, 50, 100, 200, 250, 250]);
});

it('scales with the random draw (full jitter) and is 0 for a draw of 0', () => {
  expect(backoffDelay(3, 10, 1000, () => 0)).toBe(0);
  expect(backoffDelay(3, 10, 1000, () => 0.5)).toBe(20);
});

it('huge retry numbers and a zero base give finite delays', () => {
  expect(backoffDelay(10_000, 25, 250, () => 0.5)).toBe(125);
  expect(backoffDelay(10_000, 0, 250, () => 0.5)).toBe(0);
});
