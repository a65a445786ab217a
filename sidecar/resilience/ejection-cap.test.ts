import { expect, it } from 'vitest';
import { isMeshError } from '../../core/errors.js';
import { EjectionCap } from './ejection-cap.js';

it('allows floor(total × pct / 100) ejections', () => {
  const cap = new EjectionCap(50);
  cap.total = 5; // floor(2.5) = 2
  expect(cap.mayEject()).toBe(true);
  cap.onEject();
  expect(cap.mayEject()).toBe(true);
  cap.onEject();
  expect(cap.mayEject()).toBe(false);
  cap.onRestore();
  expect(cap.mayEject()).toBe(true);
  expect(cap.ejected).toBe(1);
});

it('always allows at least one ejection, even at 0 % or with one endpoint', () => {
  const zero = new EjectionCap(0);
  zero.total = 10;
  expect(zero.mayEject()).toBe(true);
  zero.onEject();
  expect(zero.mayEject()).toBe(false);

  const single = new EjectionCap(30);
  single.total = 1;
  expect(single.mayEject()).toBe(true);
});

it('100 % lets every endpoint be ejected', () => {
  const cap = new EjectionCap(100);
  cap.total = 3;
  for (let i = 0; i < 3; i++) {
    expect(cap.mayEject()).toBe(true);
    cap.onEject();
  }
  expect(cap.mayEject()).toBe(false);
});

it('a shrunken endpoint set lowers the cap; restore never goes below zero', () => {
  const cap = new EjectionCap(50);
  cap.total = 4;
  cap.onEject();
  cap.onEject();
  cap.total = 2;
  expect(cap.mayEject()).toBe(false);
  for (let i = 0; i < 4; i++) cap.onRestore();
  expect(cap.ejected).toBe(0);
});

it('refuses a percentage outside 0..100 with a typed error', () => {
  let caught: unknown;
  try {
    new EjectionCap(150);
  } catch (e) {
    caught = e;
  }
  expect(isMeshError(caught, 'INTERNAL')).toBe(true);
});
