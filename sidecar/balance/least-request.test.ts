import { expect, it } from 'vitest';
import type { BalancedEndpoint } from './balancer.js';
import { LeastRequestBalancer } from './least-request.js';

const endpoint = (address: string, weight: number, inflight: number): BalancedEndpoint => ({ address, weight, inflight, isAvailable: () => true });

// Cycles through a fixed list: every draw order is exercised without depending on a PRNG.
function sequence(values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

it('prefers the idle endpoint whichever is drawn first', () => {
  const busy = endpoint('busy', 1, 5);
  const idle = endpoint('idle', 1, 0);
  const balancer = new LeastRequestBalancer(sequence([0.1, 0.9, 0.6, 0.3, 0.99, 0.01]));
  for (let i = 0; i < 100; i++) expect(balancer.pick([busy, idle])).toBe(idle);
});

it('compares in-flight requests relative to weight', () => {
  // 4 in flight on weight 4 is less loaded than 2 in flight on weight 1.
  const big = endpoint('big', 4, 4);
  const small = endpoint('small', 1, 2);
  const balancer = new LeastRequestBalancer(sequence([0.05, 0.5, 0.95, 0.2]));
  for (let i = 0; i < 50; i++) expect(balancer.pick([small, big])).toBe(big);
});

it('with three endpoints never picks the busiest, which loses every pairing', () => {
  const eps = [endpoint('a', 1, 9), endpoint('b', 1, 1), endpoint('c', 1, 2)];
  let state = 1;
  const balancer = new LeastRequestBalancer(() => ((state = (state * 48271) % 2147483647) / 2147483647));
  const seen = new Map<string, number>();
  for (let i = 0; i < 600; i++) {
    const e = balancer.pick(eps)!;
    seen.set(e.address, (seen.get(e.address) ?? 0) + 1);
  }
  expect(seen.get('a')).toBeUndefined();
  // b wins both its pairings, c only the one against a: b ≈ 2/3, c ≈ 1/3.
  expect(seen.get('b')!).toBeGreaterThan(seen.get('c')!);
  expect(seen.get('c')!).toBeGreaterThan(0);
});
