// Retries wrap the split and the balancer, so each try picks again (go-kit sd/lb/retry). Bounded by
// attempts, the request deadline, a retry budget (retries as a share of live traffic, so a full
// outage cannot multiply load) and a replay buffer for bodies. Backoff: exponential, full jitter.
import type { Clock } from '../../core/clock.js';
import type { RetryPolicy } from '../../core/config/normalize.js';
import { isMeshError, meshError, type MeshError } from '../../core/errors.js';
import type { Layer, MeshResponse, RequestContext } from '../../core/handler.js';
import type { SidecarObserver } from '../../core/telemetry/observer.js';
import { makeReplayable } from '../replayable-body.js';
import { backoffDelay } from '../resilience/backoff.js';
import type { RetryBudget } from '../resilience/retry-budget.js';

export interface RetryDeps {
  policy: RetryPolicy;
  budget: RetryBudget;
  clock: Clock;
  observer: SidecarObserver;
  service: string;
  route: string;
  random?: () => number;
}

export const retry =
  ({ policy, budget, clock, observer, service, route, random = Math.random }: RetryDeps): Layer =>
  (next) =>
  async (req, ctx) => {
    budget.recordRequest();
    if (policy.attempts <= 1) return next(req, ctx);
    const idempotent = policy.methods.has(req.method);
    // Without a replayable body nothing can be retried; buffer only when a retry is possible at all.
    // Bodyless requests (most) skip the call: an await per request is measurable on the hot path.
    const replayable = req.bodyless || ((idempotent || policy.onConnectFailure) && (await makeReplayable(req, policy.maxBufferBytes)));
    const causes: string[] = [];

    for (let attempt = 1; ; attempt++) {
      ctx.attempt = attempt;
      ctx.info.attempts = attempt;
      let res: MeshResponse | undefined;
      let err: MeshError | undefined;
      try {
        res = await next(req, ctx);
      } catch (e) {
        err = isMeshError(e) ? e : meshError('INTERNAL', String((e as Error)?.message ?? e), undefined, e);
      }
      const reason = retryReason(policy, idempotent, res, err, ctx, clock);
      if (reason === undefined || attempt >= policy.attempts || !replayable) return settle(res, err, causes);
      causes.push(`${ctx.info.endpoint ?? '?'}: ${reason}`);
      if (!budget.tryWithdraw()) {
        observer.retryBudgetExhausted(service, route);
        ctx.info.errorCode = 'RETRY_BUDGET_EXHAUSTED';
        if (err) throw meshError('RETRY_BUDGET_EXHAUSTED', `${service}: retry budget exhausted; last failure: ${err.message}`, { service, route, causes }, err);
        return res!;
      }
      const delay = Math.max(backoffDelay(attempt, policy.backoffBaseMs, policy.backoffMaxMs, random), policy.honorRetryAfter && res ? retryAfterMs(res, policy.backoffMaxMs * 4) : 0);
      if (clock.now() + delay >= ctx.deadline) return settle(res, err, causes);
      discard(res);
      observer.retry(service, route, reason);
      ctx.info.retries++;
      if (delay > 0) await wait(delay, clock, ctx);
    }
  };

function retryReason(policy: RetryPolicy, idempotent: boolean, res: MeshResponse | undefined, err: MeshError | undefined, ctx: RequestContext, clock: Clock): string | undefined {
  // A response that is no retry condition (nearly all) is settled before the clock is read.
  if (res !== undefined && !(idempotent && policy.statuses.has(res.status))) return undefined;
  if (ctx.signal.aborted || clock.now() >= ctx.deadline) return undefined;
  if (res) return String(res.status);
  if (!err) return undefined;
  // Nothing was sent on a failed connect, so any method may go again.
  if (err.code === 'UPSTREAM_CONNECT_FAILURE') return policy.onConnectFailure ? 'connect-failure' : undefined;
  // No endpoint available right now (all ejected) is not retried: failing fast is the point.
  if (!idempotent) return undefined;
  if (err.code === 'UPSTREAM_RESET') return policy.onReset ? 'reset' : undefined;
  if (err.code === 'UPSTREAM_TIMEOUT' && err.details?.perTry === true) return policy.onTimeout ? 'timeout' : undefined;
  return undefined;
}

function settle(res: MeshResponse | undefined, err: MeshError | undefined, causes: string[]): MeshResponse {
  if (res) return res;
  if (causes.length > 0 && err && err.details) (err.details as Record<string, unknown>).previousAttempts = causes;
  throw err!;
}

/** Frees the connection of a response we will not use: small bodies are read off, big ones aborted. */
function discard(res: MeshResponse | undefined): void {
  res?.body?.discard();
}

function retryAfterMs(res: MeshResponse, capMs: number): number {
  const h = res.headers['retry-after'];
  if (typeof h !== 'string') return 0;
  const secs = Number(h);
  const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(h) - Date.now();
  return Number.isFinite(ms) && ms > 0 ? Math.min(ms, capMs) : 0;
}

function wait(ms: number, clock: Clock, ctx: RequestContext): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clock.clearTimeout(t);
      reject(ctx.signal.reason as Error);
    };
    const t = clock.setTimeout(() => {
      ctx.signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    ctx.signal.addEventListener('abort', onAbort, { once: true });
  });
}
