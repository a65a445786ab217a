import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../core/clock.js';
import { normalize, type RetryPolicy } from '../../core/config/normalize.js';
import type { RetryInput } from '../../core/config/schema.js';
import { isMeshError, meshError } from '../../core/errors.js';
import type { Handler, MeshRequest, MeshResponse, RequestContext, ResponseBody } from '../../core/handler.js';
import { noopObserver, type SidecarObserver } from '../../core/telemetry/observer.js';
import { RetryBudget } from '../resilience/retry-budget.js';
import { retry } from './retry.js';

/** The policy exactly as the config would produce it (defaults included). */
const policyOf = (r: RetryInput): RetryPolicy => normalize({ services: { s: { retry: r } } }).config.services.get('s')!.retry;

const request = (over: Partial<MeshRequest> = {}): MeshRequest => ({ method: 'GET', path: '/x', authority: 's', headers: {}, body: null, bodyless: true, ...over });
const context = (clock: FakeClock, deadlineMs = Infinity): RequestContext => ({
  signal: new AbortController().signal,
  deadline: clock.now() + deadlineMs,
  attempt: 1,
  info: { attempts: 1, retries: 0 },
});
const response = (status: number, headers: Record<string, string> = {}): MeshResponse => ({ status, headers, body: null });

/** A fake next handler answering from a script, one entry per attempt; records what each attempt saw. */
function scripted(script: Array<MeshResponse | Error>): Handler & { calls: Array<{ attempt: number; body: Buffer | undefined }> } {
  const calls: Array<{ attempt: number; body: Buffer | undefined }> = [];
  const h = (async (req: MeshRequest, ctx: RequestContext) => {
    calls.push({ attempt: ctx.attempt, body: req.bufferedBody });
    ctx.info.endpoint = `ep${calls.length}`;
    const next = script[Math.min(calls.length - 1, script.length - 1)]!;
    if (next instanceof Error) throw next;
    return next;
  }) as Handler & { calls: typeof calls };
  h.calls = calls;
  return h;
}

function layer(policy: RetryPolicy, clock: FakeClock, opts: { budget?: RetryBudget; observer?: SidecarObserver; random?: () => number } = {}) {
  return retry({
    policy,
    budget: opts.budget ?? new RetryBudget({ ratio: 1, minPerSecond: 100, windowMs: 10_000 }, clock),
    clock,
    observer: opts.observer ?? noopObserver,
    service: 's',
    route: 'default',
    random: opts.random ?? (() => 0), // no backoff wait unless a test wants one
  });
}

const connectFailure = () => meshError('UPSTREAM_CONNECT_FAILURE', 'refused', { endpoint: 'x' });
const reset = () => meshError('UPSTREAM_RESET', 'reset', { endpoint: 'x' });

describe('retry layer', () => {
  it('retries a listed status and returns the later success, counting attempts', async () => {
    const clock = new FakeClock();
    const next = scripted([response(503), response(503), response(200)]);
    const ctx = context(clock);
    const res = await layer(policyOf({ attempts: 3, on: ['503'] }), clock)(next)(request(), ctx);
    expect(res.status).toBe(200);
    expect(next.calls.map((c) => c.attempt)).toEqual([1, 2, 3]);
    expect(ctx.info).toMatchObject({ attempts: 3, retries: 2 });
  });

  it('stops at the configured attempts and returns the last response', async () => {
    const clock = new FakeClock();
    const next = scripted([response(503)]);
    const res = await layer(policyOf({ attempts: 2, on: ['503'] }), clock)(next)(request(), context(clock));
    expect(res.status).toBe(503);
    expect(next.calls).toHaveLength(2);
  });

  it('does not retry a status that is not listed', async () => {
    const clock = new FakeClock();
    const next = scripted([response(500), response(200)]);
    expect((await layer(policyOf({ attempts: 3, on: ['503'] }), clock)(next)(request(), context(clock))).status).toBe(500);
    expect(next.calls).toHaveLength(1);
  });

  it('passes through untouched when attempts is 1', async () => {
    const clock = new FakeClock();
    const next = scripted([response(503), response(200)]);
    expect((await layer(policyOf({ attempts: 1, on: ['503'] }), clock)(next)(request(), context(clock))).status).toBe(503);
    expect(next.calls).toHaveLength(1);
  });

  it('by default retries connect failures and resets of idempotent methods', async () => {
    const clock = new FakeClock();
    const policy = policyOf({});
    const a = scripted([connectFailure(), response(200)]);
    expect((await layer(policy, clock)(a)(request(), context(clock))).status).toBe(200);
    const b = scripted([reset(), response(200)]);
    expect((await layer(policy, clock)(b)(request({ method: 'DELETE' }), context(clock))).status).toBe(200);
    // …but not a 503, which is not in the default conditions.
    const c = scripted([response(503), response(200)]);
    expect((await layer(policy, clock)(c)(request(), context(clock))).status).toBe(503);
  });

  it('retries a POST only when nothing was sent (connect failure), never after a reset or a status', async () => {
    const clock = new FakeClock();
    const policy = policyOf({ attempts: 3, on: ['connect-failure', 'reset', '503'] });
    const post = () => request({ method: 'POST' });
    const refused = scripted([connectFailure(), response(201)]);
    expect((await layer(policy, clock)(refused)(post(), context(clock))).status).toBe(201);
    const wasReset = scripted([reset(), response(201)]);
    await expect(layer(policy, clock)(wasReset)(post(), context(clock))).rejects.toSatisfy((e) => isMeshError(e, 'UPSTREAM_RESET'));
    expect(wasReset.calls).toHaveLength(1);
    const unavailable = scripted([response(503), response(201)]);
    expect((await layer(policy, clock)(unavailable)(post(), context(clock))).status).toBe(503);
  });

  it('retries a per-try timeout only when "timeout" is listed, and never the total deadline', async () => {
    const clock = new FakeClock();
    const perTry = () => meshError('UPSTREAM_TIMEOUT', 'per try', { perTry: true });
    const total = () => meshError('UPSTREAM_TIMEOUT', 'total', { perTry: false });
    const withTimeout = policyOf({ attempts: 3, on: ['timeout'] });
    expect((await layer(withTimeout, clock)(scripted([perTry(), response(200)]))(request(), context(clock))).status).toBe(200);
    const t = scripted([total(), response(200)]);
    await expect(layer(withTimeout, clock)(t)(request(), context(clock))).rejects.toSatisfy((e) => isMeshError(e, 'UPSTREAM_TIMEOUT'));
    expect(t.calls).toHaveLength(1);
    const without = scripted([perTry(), response(200)]);
    await expect(layer(policyOf({ attempts: 3 }), clock)(without)(request(), context(clock))).rejects.toSatisfy((e) => isMeshError(e, 'UPSTREAM_TIMEOUT'));
  });

  it('does not retry when every endpoint is ejected (fail fast)', async () => {
    const clock = new FakeClock();
    const next = scripted([meshError('CIRCUIT_OPEN', 'all ejected'), response(200)]);
    await expect(layer(policyOf({ attempts: 3, on: ['connect-failure', 'reset', '5xx'] }), clock)(next)(request(), context(clock))).rejects.toSatisfy((e) => isMeshError(e, 'CIRCUIT_OPEN'));
    expect(next.calls).toHaveLength(1);
  });

  it('keeps every earlier attempt\'s cause on the final error', async () => {
    const clock = new FakeClock();
    const next = scripted([connectFailure(), connectFailure(), connectFailure()]);
    const err = await layer(policyOf({ attempts: 3 }), clock)(next)(request(), context(clock)).catch((e: unknown) => e);
    expect(isMeshError(err, 'UPSTREAM_CONNECT_FAILURE')).toBe(true);
    expect((err as { details: { previousAttempts: string[] } }).details.previousAttempts).toEqual(['ep1: connect-failure', 'ep2: connect-failure']);
  });

  it('when the budget refuses: a failure becomes RETRY_BUDGET_EXHAUSTED, a response is returned as is', async () => {
    const clock = new FakeClock();
    const empty = () => new RetryBudget({ ratio: 0, minPerSecond: 0, windowMs: 10_000 }, clock);
    const refusals: string[] = [];
    const observer = { ...noopObserver, retryBudgetExhausted: (service: string, route: string) => void refusals.push(`${service}/${route}`) };
    const failing = scripted([connectFailure(), response(200)]);
    const ctx = context(clock);
    const err = await layer(policyOf({ attempts: 3 }), clock, { budget: empty(), observer })(failing)(request(), ctx).catch((e: unknown) => e);
    expect(isMeshError(err, 'RETRY_BUDGET_EXHAUSTED')).toBe(true);
    expect((err as Error).cause).toSatisfy((c) => isMeshError(c, 'UPSTREAM_CONNECT_FAILURE'));
    expect(ctx.info.errorCode).toBe('RETRY_BUDGET_EXHAUSTED');
    const answered = scripted([response(503), response(200)]);
    expect((await layer(policyOf({ attempts: 3, on: ['503'] }), clock, { budget: empty(), observer })(answered)(request(), context(clock))).status).toBe(503);
    expect(failing.calls).toHaveLength(1);
    expect(answered.calls).toHaveLength(1);
    expect(refusals).toEqual(['s/default', 's/default']);
  });

  it('spends the budget: ratio × requests + floor retries, then no more', async () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 0.2, windowMs: 10_000 }, clock); // floor 2
    const l = layer(policyOf({ attempts: 2, on: ['503'] }), clock, { budget });
    let upstreamCalls = 0;
    for (let i = 0; i < 10; i++) {
      const next = scripted([response(503)]);
      await l(next)(request(), context(clock));
      upstreamCalls += next.calls.length;
    }
    expect(upstreamCalls).toBe(10 + 0.5 * 10 + 2);
  });

  it('waits a jittered exponential backoff between tries, on the injected clock', async () => {
    const clock = new FakeClock();
    const next = scripted([response(503), response(503), response(200)]);
    const policy = policyOf({ attempts: 3, on: ['503'], backoff: { base: '100ms', max: '1s' } });
    let done = false;
    const p = layer(policy, clock, { random: () => 0.5 })(next)(request(), context(clock)).then((r) => ((done = true), r));
    await flush();
    expect(next.calls).toHaveLength(1);
    clock.advance(49); // first retry: 0.5 × 100 ms
    await flush();
    expect(next.calls).toHaveLength(1);
    clock.advance(1);
    await flush();
    expect(next.calls).toHaveLength(2);
    clock.advance(99); // second retry: 0.5 × 200 ms
    await flush();
    expect(next.calls).toHaveLength(2);
    clock.advance(1);
    expect((await p).status).toBe(200);
    expect(done).toBe(true);
  });

  it('honours Retry-After (seconds), capped at 4 × backoff.max', async () => {
    const clock = new FakeClock();
    const policy = policyOf({ attempts: 2, on: ['503'], backoff: { base: '1ms', max: '500ms' } });
    const next = scripted([response(503, { 'retry-after': '1' }), response(200)]);
    const p = layer(policy, clock)(next)(request(), context(clock));
    await flush();
    clock.advance(999);
    await flush();
    expect(next.calls).toHaveLength(1);
    clock.advance(1);
    expect((await p).status).toBe(200);
    const capped = scripted([response(503, { 'retry-after': '3600' }), response(200)]);
    const q = layer(policy, clock)(capped)(request(), context(clock));
    await flush();
    clock.advance(2_000);
    expect((await q).status).toBe(200);
  });

  it('does not retry when the backoff would end past the deadline', async () => {
    const clock = new FakeClock();
    const policy = policyOf({ attempts: 3, on: ['503'], backoff: { base: '1s', max: '1s' } });
    const next = scripted([response(503), response(200)]);
    const res = await layer(policy, clock, { random: () => 0.9 })(next)(request(), context(clock, 500));
    expect(res.status).toBe(503);
    expect(next.calls).toHaveLength(1);
  });

  it('an abort during the backoff rejects with the abort reason', async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    const ctx = { ...context(clock), signal: ac.signal };
    const next = scripted([response(503), response(200)]);
    const p = layer(policyOf({ attempts: 2, on: ['503'], backoff: { base: '1s', max: '1s' } }), clock, { random: () => 0.5 })(next)(request(), ctx);
    await flush();
    ac.abort(meshError('CLIENT_CLOSED', 'gone'));
    await expect(p).rejects.toSatisfy((e) => isMeshError(e, 'CLIENT_CLOSED'));
    expect(next.calls).toHaveLength(1);
    expect(clock.pendingTimers).toBe(0);
  });

  it('buffers a small streamed body and replays the same bytes on every try', async () => {
    const clock = new FakeClock();
    const next = scripted([reset(), response(200)]);
    const body = Readable.from([Buffer.from('hello '), Buffer.from('world')]);
    const req = request({ method: 'PUT', body, bodyless: false, headers: { 'content-length': '11' } });
    expect((await layer(policyOf({}), clock)(next)(req, context(clock))).status).toBe(200);
    expect(next.calls.map((c) => c.body?.toString())).toEqual(['hello world', 'hello world']);
  });

  it('never retries a body larger than maxBufferBytes, and streams it whole', async () => {
    const clock = new FakeClock();
    const chunks = Array.from({ length: 10 }, (_, i) => Buffer.alloc(100, i));
    const seen: Buffer[] = [];
    let calls = 0;
    const next: Handler = async (req) => {
      calls++;
      for await (const c of req.body!) seen.push(c as Buffer);
      throw reset();
    };
    const req = request({ method: 'PUT', body: Readable.from(chunks), bodyless: false, headers: {} });
    await expect(layer(policyOf({ maxBufferBytes: 250 }), clock)(next)(req, context(clock))).rejects.toSatisfy((e) => isMeshError(e, 'UPSTREAM_RESET'));
    expect(calls).toBe(1);
    expect(Buffer.concat(seen)).toEqual(Buffer.concat(chunks));
  });

  it('does not read a body whose Content-Length already exceeds the buffer', async () => {
    const clock = new FakeClock();
    const body = Readable.from([Buffer.alloc(10)]);
    const next = scripted([reset(), response(200)]);
    const req = request({ method: 'PUT', body, bodyless: false, headers: { 'content-length': String(1024 * 1024) } });
    await expect(layer(policyOf({}), clock)(next)(req, context(clock))).rejects.toSatisfy((e) => isMeshError(e, 'UPSTREAM_RESET'));
    expect(req.body).toBe(body);
    expect(next.calls).toHaveLength(1);
  });

  it('frees the body of a response it retries past', async () => {
    const clock = new FakeClock();
    let discarded = 0;
    const dropped: ResponseBody = { relay: () => {}, discard: () => void discarded++, onDone: () => {} };
    const next = scripted([{ status: 503, headers: {}, body: dropped }, response(200)]);
    expect((await layer(policyOf({ attempts: 2, on: ['503'] }), clock)(next)(request(), context(clock))).status).toBe(200);
    expect(discarded).toBe(1);
  });
});

/** Lets pending promise callbacks run (the fake clock only moves timers). */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}
