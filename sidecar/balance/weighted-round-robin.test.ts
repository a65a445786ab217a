import { expect, it } from 'vitest';
import type { BalancedEndpoint } from './balancer.js';
import { WeightedRoundRobinBalancer } from './weighted-round-robin.js';

class Endpoint implements BalancedEndpoint {
  inflight = 0;
  available = true;
  constructor(
    readonly address: string,
    readonly weight: number,
  ) {}
  isAvailable(): boolean {
    return this.available;
  }
}

it('interleaves picks smoothly, as nginx does (5:1:1 → a a b a c a a)', () => {
  const eps = [new Endpoint('a', 5), new Endpoint('b', 1), new Endpoint('c', 1)];
  const balancer = new WeightedRoundRobinBalancer<Endpoint>();
  const order = Array.from({ length: 14 }, () => balancer.pick(eps)!.address).join(' ');
  expect(order).toBe('a a b a c a a a a b a c a a');
});

it('keeps its state by address when the set is rebuilt with new objects', () => {
  const balancer = new WeightedRoundRobinBalancer<Endpoint>();
  const order: string[] = [];
  for (let i = 0; i < 4; i++) order.push(balancer.pick([new Endpoint('a', 3), new Endpoint('b', 1)])!.address);
  expect(order.join(' ')).toBe('a a b a');
});

it('forgets removed endpoints and spreads over the new set', () => {
  const balancer = new WeightedRoundRobinBalancer<Endpoint>();
  const first = [new Endpoint('a', 3), new Endpoint('b', 1), new Endpoint('c', 1)];
  for (let i = 0; i < 3; i++) balancer.pick(first);
  const second = [new Endpoint('c', 1), new Endpoint('d', 1)];
  const counts = new Map<string, number>();
  for (let i = 0; i < 100; i++) {
    const a = balancer.pick(second)!.address;
    counts.set(a, (counts.get(a) ?? 0) + 1);
  }
  expect(counts.get('c')).toBeGreaterThanOrEqual(49);
  expect(counts.get('d')).toBeGreaterThanOrEqual(49);
});

it('an endpoint that becomes unavailable gets nothing, and its share goes to the others', () => {
  const eps = [new Endpoint('a', 2), new Endpoint('b', 1), new Endpoint('c', 1)];
  const balancer = new WeightedRoundRobinBalancer<Endpoint>();
  eps[0]!.available = false;
  const counts = new Map<string, number>();
  for (let i = 0; i < 100; i++) {
    const a = balancer.pick(eps)!.address;
    counts.set(a, (counts.get(a) ?? 0) + 1);
  }
  expect(counts.get('a')).toBeUndefined();
  expect(counts.get('b')).toBe(50);
  expect(counts.get('c')).toBe(50);
});
