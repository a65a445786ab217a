// Exponential backoff with "full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"):
// a uniformly random wait in [0, min(max, base * 2^(retry-1))). Jitter spreads retries of many
// clients apart so they do not hit a recovering backend in waves.

/** Milliseconds to wait before retry number `retry` (1 = first retry). */
export function backoffDelay(retry: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  // The exponent is capped so huge retry numbers cannot produce Infinity (and 0 * Infinity = NaN).
  const exponent = Math.min(Math.max(retry, 1) - 1, 52);
  const ceiling = Math.min(maxMs, baseMs * 2 ** exponent);
  return ceiling > 0 ? random() * ceiling : 0;
}
