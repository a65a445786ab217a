import type { Clock } from '../../core/clock.js';
import type { Layer } from '../../core/handler.js';

/**
 * Sets the request's deadline (retries included). The cut itself happens where the I/O is (each
 * attempt arms its timer from ctx.deadline), so the deadline propagates instead of racing promises.
 * It covers the wait for response headers; a streamed body is bounded by the client, not by it.
 */
export const timeout =
  (ms: number, clock: Clock): Layer =>
  (next) =>
  (req, ctx) => {
    if (ms > 0) ctx.deadline = Math.min(ctx.deadline, clock.now() + ms);
    return next(req, ctx);
  };
