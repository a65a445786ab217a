import { expect, it } from 'vitest';
import type { BalancedEndpoint } from './balancer.js';
import { RoundRobinBalancer } from './round-robin.js';

const endpoint = (address: string, available = true): BalancedEndpoint => ({ address, weight: 1, inflight: 0, isAvailable: () => available });

it('rotates in order and skips an unavailable endpoint without losing its place', () => {
  const eps = [endpoint('a'), endpoint('b', false), endpoint('c'), endpoint('d')];
  const balancer = new RoundRobinBalancer();
  expect(Array.from({ length: 6 }, () => balancer.pick(eps)!.address).join(' ')).toBe('a c d a c d');
});

it('continues from its cursor when the set shrinks below it', () => {
  const balancer = new RoundRobinBalancer();
  const big = ['a', 'b', 'c', 'd'].map((a) => endpoint(a));
  for (let i = 0; i < 3; i++) balancer.pick(big); // cursor now at index 3
  const small = [endpoint('x'), endpoint('y')];
  expect(Array.from({ length: 4 }, () => balancer.pick(small)!.address).join(' ')).toBe('y x y x');
});
