import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../core/clock.js';
import type { Handler, RequestContext } from '../../core/handler.js';
import { timeout } from './timeout.js';

const ctxAt = (deadline = Infinity): RequestContext => ({ signal: new AbortController().signal, deadline, attempt: 1, info: { attempts: 1, retries: 0 } });
const req = { method: 'GET', path: '/', authority: 's', headers: {}, body: null, bodyless: true };

/** A next handler that reports the deadline it was given. */
const seeDeadline: Handler = async (_req, ctx) => ({ status: 200, headers: { deadline: String(ctx.deadline) }, body: null });

describe('timeout layer', () => {
  it('sets the request deadline to now + ms on the injected clock', async () => {
    const clock = new FakeClock(5_000);
    const res = await timeout(300, clock)(seeDeadline)(req, ctxAt());
    expect(res.headers.deadline).toBe('5300');
  });

  it('keeps an earlier deadline set by an outer layer', async () => {
    const clock = new FakeClock(5_000);
    expect((await timeout(300, clock)(seeDeadline)(req, ctxAt(5_100))).headers.deadline).toBe('5100');
    expect((await timeout(300, clock)(seeDeadline)(req, ctxAt(9_000))).headers.deadline).toBe('5300');
  });

  it('0 means no deadline', async () => {
    const clock = new FakeClock(5_000);
    expect((await timeout(0, clock)(seeDeadline)(req, ctxAt())).headers.deadline).toBe('Infinity');
  });

  it('passes the result and errors of next through unchanged', async () => {
    const clock = new FakeClock();
    const boom = new Error('boom');
    await expect(timeout(10, clock)(async () => Promise.reject(boom))(req, ctxAt())).rejects.toBe(boom);
    // The cut itself is armed by the attempt from ctx.deadline, not by a timer here.
    expect(clock.pendingTimers).toBe(0);
  });
});
