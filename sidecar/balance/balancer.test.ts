import { describe, expect, it } from 'vitest';
import { createBalancer, type BalancedEndpoint, type BalancerKind } from './balancer.js';

// Deterministic PRNG (mulberry32) so distributions are reproducible; returns [0, 1).
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class TestEndpoint implements BalancedEndpoint {
  constructor(
    readonly address: string,
    readonly weight = 1,
    public inflight = 0,
    public available = true,
  ) {}
  isAvailable(): boolean {
    return this.available;
  }
}

const ALL_KINDS: BalancerKind[] = ['round-robin', 'weighted-round-robin', 'random', 'least-request'];
const WEIGHTED_KINDS: BalancerKind[] = ['weighted-round-robin', 'random', 'least-request'];

function countPicks(kind: BalancerKind, endpoints: TestEndpoint[], picks: number, seed = 42): Map<string, number> {
  const balancer = createBalancer<TestEndpoint>(kind, mulberry32(seed));
  const counts = new Map<string, number>(endpoints.map((e) => [e.address, 0]));
  for (let i = 0; i < picks; i++) {
    const e = balancer.pick(endpoints);
    if (!e) throw new Error('no endpoint picked');
    counts.set(e.address, counts.get(e.address)! + 1);
  }
  return counts;
}

describe.each(ALL_KINDS)('%s balancer', (kind) => {
  it('never picks an unavailable endpoint', () => {
    const endpoints = [new TestEndpoint('a', 3), new TestEndpoint('b', 1, 0, false), new TestEndpoint('c', 1), new TestEndpoint('d', 2, 0, false)];
    const counts = countPicks(kind, endpoints, 1000);
    expect(counts.get('b')).toBe(0);
    expect(counts.get('d')).toBe(0);
    expect(counts.get('a')! + counts.get('c')!).toBe(1000);
    expect(counts.get('c')).toBeGreaterThan(0);
  });

  it('returns undefined when every endpoint is unavailable, or there are none', () => {
    const balancer = createBalancer<TestEndpoint>(kind, mulberry32(1));
    expect(balancer.pick([new TestEndpoint('a', 1, 0, false), new TestEndpoint('b', 2, 0, false)])).toBeUndefined();
    expect(balancer.pick([])).toBeUndefined();
  });

  it('avoids the given endpoint while another is available', () => {
    const endpoints = [new TestEndpoint('a', 5), new TestEndpoint('b', 1), new TestEndpoint('c', 1, 0, false)];
    const balancer = createBalancer<TestEndpoint>(kind, mulberry32(7));
    for (let i = 0; i < 200; i++) expect(balancer.pick(endpoints, endpoints[0])?.address).toBe('b');
  });

  it('avoids by address when the endpoint set was rebuilt', () => {
    const balancer = createBalancer<TestEndpoint>(kind, mulberry32(7));
    const endpoints = [new TestEndpoint('a', 5), new TestEndpoint('b', 1)];
    for (let i = 0; i < 50; i++) expect(balancer.pick(endpoints, new TestEndpoint('a'))?.address).toBe('b');
  });

  it('falls back to the avoided endpoint when it is the only available one', () => {
    const endpoints = [new TestEndpoint('a'), new TestEndpoint('b', 1, 0, false)];
    const balancer = createBalancer<TestEndpoint>(kind, mulberry32(3));
    expect(balancer.pick(endpoints, endpoints[0])).toBe(endpoints[0]);
    // ...but never an avoided endpoint that is not in the set.
    expect(balancer.pick([new TestEndpoint('b', 1, 0, false)], endpoints[0])).toBeUndefined();
  });

  it('keeps working when the endpoint set changes size between picks', () => {
    const balancer = createBalancer<TestEndpoint>(kind, mulberry32(5));
    const big = ['a', 'b', 'c', 'd', 'e'].map((a) => new TestEndpoint(a));
    const small = [new TestEndpoint('x'), new TestEndpoint('y')];
    for (let i = 0; i < 7; i++) balancer.pick(big);
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) seen.add(balancer.pick(small)!.address);
    expect([...seen].sort()).toEqual(['x', 'y']);
    for (let i = 0; i < 50; i++) seen.add(balancer.pick(big)!.address);
    expect(seen.size).toBe(7);
  });
});

describe.each(WEIGHTED_KINDS)('%s honours weights', (kind) => {
  it('splits 4,000 picks over weights 3:1 within ±5% of 75/25', () => {
    const counts = countPicks(kind, [new TestEndpoint('heavy', 3), new TestEndpoint('light', 1)], 4000);
    expect(counts.get('heavy')! / 4000).toBeGreaterThan(0.7);
    expect(counts.get('heavy')! / 4000).toBeLessThan(0.8);
    expect(counts.get('light')! / 4000).toBeGreaterThan(0.2);
    expect(counts.get('light')! / 4000).toBeLessThan(0.3);
  });

  it('splits 4,000 picks over weights 3:1:1:1 within ±5% of 50/16.7/16.7/16.7', () => {
    const endpoints = [new TestEndpoint('heavy', 3), new TestEndpoint('b'), new TestEndpoint('c'), new TestEndpoint('d')];
    const counts = countPicks(kind, endpoints, 4000, 99);
    expect(Math.abs(counts.get('heavy')! / 4000 - 0.5)).toBeLessThan(0.05);
    for (const a of ['b', 'c', 'd']) expect(Math.abs(counts.get(a)! / 4000 - 1 / 6)).toBeLessThan(0.05);
  });
});

describe('round-robin', () => {
  it('ignores weights and rotates evenly', () => {
    const counts = countPicks('round-robin', [new TestEndpoint('a', 3), new TestEndpoint('b', 1)], 4000);
    expect(counts.get('a')).toBe(2000);
    expect(counts.get('b')).toBe(2000);
  });
});

it('createBalancer refuses an unknown kind with a typed error', async () => {
  const { isMeshError } = await import('../../core/errors.js');
  let caught: unknown;
  try {
    createBalancer('fastest' as BalancerKind);
  } catch (e) {
    caught = e;
  }
  expect(isMeshError(caught, 'INTERNAL')).toBe(true);
});
