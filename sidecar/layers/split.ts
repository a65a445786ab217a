import type { Handler } from '../../core/handler.js';

/** Weighted split across backends (canary 90/10); chosen per attempt, so a retry may cross over. */
export function split(backends: ReadonlyArray<{ handler: Handler; weight: number }>, random: () => number = Math.random): Handler {
  const live = backends.filter((b) => b.weight > 0);
  if (live.length === 1) return live[0]!.handler;
  const total = live.reduce((s, b) => s + b.weight, 0);
  return (req, ctx) => {
    let r = random() * total;
    for (const b of live) {
      r -= b.weight;
      if (r < 0) return b.handler(req, ctx);
    }
    return live[live.length - 1]!.handler(req, ctx);
  };
}
