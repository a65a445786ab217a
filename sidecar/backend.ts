// Concrete → endpoint: pick an endpoint of one backend (a service or a label subset of it), apply the
// service's concurrency limits, account the outcome to the endpoint's breaker, forward through its
// pool. One call is one attempt; the retry layer above calls again and may land elsewhere.
import type { Clock } from '../core/clock.js';
import { meshError, type MeshError } from '../core/errors.js';
import type { MeshRequest, MeshResponse, RequestContext } from '../core/handler.js';
import type { SidecarObserver } from '../core/telemetry/observer.js';
import type { Balancer } from './balance/balancer.js';
import type { Endpoint } from './endpoint.js';
import type { ServiceRuntime } from './service-runtime.js';
import { AttemptSignal } from './upstream/attempt-signal.js';

export class Backend {
  readonly service: ServiceRuntime;
  readonly name: string;
  readonly endpoints: Endpoint[];
  readonly #balancer: Balancer<Endpoint>;
  readonly #clock: Clock;
  readonly #observer: SidecarObserver;

  constructor(service: ServiceRuntime, name: string, endpoints: Endpoint[], balancer: Balancer<Endpoint>, clock: Clock, observer: SidecarObserver) {
    this.service = service;
    this.name = name;
    this.endpoints = endpoints;
    this.#balancer = balancer;
    this.#clock = clock;
    this.#observer = observer;
  }

  async send(req: MeshRequest, ctx: RequestContext, perTryTimeoutMs: number): Promise<MeshResponse> {
    const svc = this.service;
    const name = svc.config.name;
    ctx.info.backend = this.name;
    if (ctx.signal.aborted) throw ctx.signal.reason as Error;
    // A retry prefers another endpoint than the one that just failed.
    const avoid = ctx.attempt > 1 && ctx.info.endpoint ? this.endpoints.find((e) => e.address === ctx.info.endpoint) : undefined;
    const ep = this.#balancer.pick(this.endpoints, avoid);
    if (!ep) throw this.#noEndpoint();

    if (!svc.requests.tryAcquire()) {
      this.#observer.overflow(name, 'requests');
      throw meshError('OVERFLOW', `${name}: ${svc.requests.max} requests already in flight (limits.maxRequests)`, { service: name, limit: 'maxRequests' });
    }
    // Beyond the pool's connections a request waits for one: that wait is what maxPending bounds.
    let pendingHeld = false;
    if (ep.inflight >= svc.config.limits.maxConnectionsPerEndpoint) {
      if (!svc.pending.tryAcquire()) {
        svc.requests.release();
        this.#observer.overflow(name, 'pending');
        throw meshError('OVERFLOW', `${name}: ${svc.pending.max} requests already waiting for a connection (limits.maxPending)`, { service: name, limit: 'maxPending' });
      }
      pendingHeld = true;
    }

    ep.inflight++;
    const token = ep.breaker.onRequestStart();
    ctx.info.endpoint = ep.address;
    // Each attempt gets its own copy only when telemetry writes into it (traceparent per attempt);
    // forward() sets host, the same on every attempt.
    const headers = ctx.telemetry?.injectsHeaders === true ? { ...req.headers } : req.headers;
    const attemptTelemetry = ctx.telemetry?.attemptStarted(ctx.attempt, ep.address, headers);

    // This try's deadline: the request's, or the per-try timeout when that comes first.
    let ms = ctx.deadline - this.#clock.now();
    let perTry = false;
    if (perTryTimeoutMs > 0 && perTryTimeoutMs < ms) {
      ms = perTryTimeoutMs;
      perTry = true;
    }
    const ac = new AttemptSignal();
    const onClientAbort = (): void => ac.abort(ctx.signal.reason);
    ctx.signal.addEventListener('abort', onClientAbort);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      ep.inflight--;
      svc.requests.release();
      if (pendingHeld) svc.pending.release();
      ctx.signal.removeEventListener('abort', onClientAbort);
    };
    const timer =
      ms === Infinity
        ? undefined
        : this.#clock.setTimeout(
            () => ac.abort(meshError('UPSTREAM_TIMEOUT', `${name}: no response from ${ep.address} within ${Math.round(perTry ? perTryTimeoutMs : ms)}ms${perTry ? ' (per-try timeout)' : ''}`, { service: name, endpoint: ep.address, perTry })),
            Math.max(0, ms),
          );
    try {
      const res = await ep.pool.forward(req, headers, ac);
      if (timer !== undefined) this.#clock.clearTimeout(timer);
      if (pendingHeld) {
        svc.pending.release();
        pendingHeld = false;
      }
      if (res.status >= 500) ep.breaker.onFailure(token);
      else ep.breaker.onSuccess(token);
      attemptTelemetry?.end(res.status, undefined);
      // In flight until the body is done: least-request and limits see streaming responses.
      if (res.body) res.body.onDone(release);
      else release();
      return res;
    } catch (e) {
      if (timer !== undefined) this.#clock.clearTimeout(timer);
      release();
      const err = e as MeshError;
      if (err.code === 'CLIENT_CLOSED') ep.breaker.onCancel(token);
      else ep.breaker.onFailure(token);
      attemptTelemetry?.end(undefined, err.code);
      throw err;
    }
  }

  /** An endpoint for a long-lived connection (WebSocket), or why there is none. */
  pickEndpoint(): Endpoint | MeshError {
    return this.#balancer.pick(this.endpoints) ?? this.#noEndpoint();
  }

  #noEndpoint(): MeshError {
    const name = this.service.config.name;
    if (this.endpoints.length === 0) {
      const what = this.name === name ? `service ${name} has no endpoints` : `backend ${this.name} matches no endpoint`;
      return meshError('NO_HEALTHY_UPSTREAM', what, { service: name, backend: this.name });
    }
    return meshError('CIRCUIT_OPEN', `every endpoint of ${this.name} is ejected by its circuit breaker`, {
      service: name,
      backend: this.name,
      endpoints: this.endpoints.length,
    });
  }
}
