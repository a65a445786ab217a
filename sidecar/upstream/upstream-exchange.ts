// One request to an upstream over undici's dispatch API, and the response it brings back. undici's
// request() wraps every response body in a Readable and parses its headers into an object; a proxy
// needs neither: chunks go from the upstream socket straight to the client's response, with
// backpressure (onData returning false pauses the upstream socket until the client drains), and the
// headers are relayed as the flat list they arrived in. The object is built only if asked for.
//
// The handler speaks undici's onConnect/onHeaders/onData/onComplete/onError callbacks: they are
// what undici 7's core calls natively (a handler written against the newer controller API is
// wrapped per request, with its headers parsed into an object we would not use).
import type { BodySink, Headers, MeshResponse, ResponseBody } from '../../core/handler.js';
import type { UpstreamSignal } from './attempt-signal.js';

// A response we will not relay (a retried 503, say) is read off when small, so the connection stays
// reusable; past this it is cheaper to abort the exchange and open another connection later.
const DISCARD_READ_LIMIT = 64 * 1024;

const enum Mode {
  /** Headers arrived; neither relay() nor discard() yet: the first chunks wait, the socket is paused. */
  Held,
  Relaying,
  Discarding,
  Done,
}

export class UpstreamExchange implements MeshResponse, ResponseBody {
  status = 0;
  rawHeaders: string[] = [];
  relayedBytes = 0;
  readonly endpoint: string;
  #headers: Headers | undefined;

  readonly #signal: UpstreamSignal;
  readonly #onAbort = (): void => this.#abortUpstream(this.#signal.reason);
  #resolve: ((r: MeshResponse) => void) | undefined;
  #reject: ((e: unknown) => void) | undefined;
  readonly #toError: (err: unknown) => Error;

  #abort: ((reason?: Error) => void) | undefined;
  #resume: (() => void) | undefined;
  #mode = Mode.Held;
  #sink: BodySink | undefined;
  #held: Buffer[] | undefined;
  #complete = false;
  #error: Error | undefined;
  #discarded = 0;
  #waitingForDrain = false;
  #onDone: ((err?: Error) => void) | Array<(err?: Error) => void> | undefined;
  #finalError: Error | undefined;

  /**
   * `toError` maps a transport error (or the signal's reason) to the error the caller sees;
   * `resolve` gets this object once headers arrive, `reject` the mapped error if none do.
   */
  constructor(endpoint: string, signal: UpstreamSignal, toError: (err: unknown) => Error, resolve: (r: MeshResponse) => void, reject: (e: unknown) => void) {
    this.endpoint = endpoint;
    this.#signal = signal;
    this.#toError = toError;
    this.#resolve = resolve;
    this.#reject = reject;
    signal.addEventListener('abort', this.#onAbort);
  }

  get headers(): Headers {
    if (this.#headers !== undefined) return this.#headers;
    const out: Headers = Object.create(null) as Headers;
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const value = raw[i + 1]!;
      const seen = out[name];
      if (seen === undefined) out[name] = value;
      else if (Array.isArray(seen)) seen.push(value);
      else out[name] = [seen, value];
    }
    return (this.#headers = out);
  }

  get body(): ResponseBody {
    return this;
  }

  // ---- undici's side -------------------------------------------------------------------------

  onConnect(abort: (reason?: Error) => void): void {
    this.#abort = abort;
    if (this.#signal.aborted) abort(this.#signal.reason as Error);
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    // Informational responses (103 Early Hints…) come before the real one; they are not relayed.
    if (status < 200 || this.#resolve === undefined) return true;
    this.status = status;
    // latin1 keeps every byte as it came (obs-text included), and node:http writes it back the same way.
    const headers = new Array<string>(raw.length);
    for (let i = 0; i < raw.length; i++) headers[i] = raw[i]!.toString('latin1');
    this.rawHeaders = headers;
    this.#resume = resume;
    const resolve = this.#resolve!;
    this.#resolve = this.#reject = undefined;
    resolve(this);
    return true;
  }

  onData(chunk: Buffer): boolean {
    switch (this.#mode) {
      case Mode.Relaying: {
        this.relayedBytes += chunk.length;
        if (this.#sink!.write(chunk)) return true;
        this.#awaitDrain();
        return false;
      }
      case Mode.Held:
        (this.#held ??= []).push(chunk);
        return false;
      case Mode.Discarding:
        this.#discarded += chunk.length;
        if (this.#discarded > DISCARD_READ_LIMIT) this.#abortUpstream(undefined);
        return true;
      default:
        return true;
    }
  }

  onComplete(): void {
    this.#complete = true;
    if (this.#mode === Mode.Relaying) {
      this.#sink!.end();
      this.#finish(undefined);
    } else if (this.#mode === Mode.Discarding) this.#finish(undefined);
  }

  onError(err: Error): void {
    if (this.#reject !== undefined) {
      const reject = this.#reject;
      this.#resolve = this.#reject = undefined;
      this.#finish(undefined);
      reject(this.#toError(err));
      return;
    }
    // The body broke off after the headers were sent on: the client's response cannot be completed.
    const e = this.#toError(err);
    this.#error = e;
    if (this.#mode === Mode.Relaying) {
      this.#sink!.destroy(e);
      this.#finish(e);
    } else if (this.#mode === Mode.Discarding) this.#finish(undefined);
  }

  // ---- the response body's side ------------------------------------------------------------------

  relay(sink: BodySink): void {
    if (this.#mode !== Mode.Held) return;
    this.#mode = Mode.Relaying;
    this.#sink = sink;
    const held = this.#held;
    this.#held = undefined;
    let flowing = true;
    if (held !== undefined)
      for (const c of held) {
        this.relayedBytes += c.length;
        flowing = sink.write(c);
      }
    if (this.#error !== undefined) {
      sink.destroy(this.#error);
      this.#finish(this.#error);
    } else if (this.#complete) {
      sink.end();
      this.#finish(undefined);
    } else if (held !== undefined) {
      if (flowing) this.#resume!();
      else this.#awaitDrain();
    }
  }

  discard(): void {
    if (this.#mode !== Mode.Held) return;
    this.#mode = Mode.Discarding;
    for (const c of this.#held ?? []) this.#discarded += c.length;
    this.#held = undefined;
    if (this.#complete || this.#error !== undefined) return this.#finish(undefined);
    if (this.#discarded > DISCARD_READ_LIMIT) this.#abortUpstream(undefined);
    else this.#resume?.();
  }

  onDone(fn: (err?: Error) => void): void {
    if (this.#mode === Mode.Done) return fn(this.#finalError);
    const d = this.#onDone;
    if (d === undefined) this.#onDone = fn;
    else if (Array.isArray(d)) d.push(fn);
    else this.#onDone = [d, fn];
  }

  // ---- internals -------------------------------------------------------------------------------

  #awaitDrain(): void {
    if (this.#waitingForDrain) return;
    this.#waitingForDrain = true;
    this.#sink!.once('drain', () => {
      this.#waitingForDrain = false;
      if (this.#mode === Mode.Relaying) this.#resume!();
    });
  }

  #abortUpstream(reason: unknown): void {
    if (this.#mode === Mode.Done) return;
    const err = reason instanceof Error ? reason : new Error('response discarded');
    if (this.#abort !== undefined) this.#abort(err);
    // Not connected yet: onConnect sees the aborted signal and aborts then.
  }

  #finish(err: Error | undefined): void {
    if (this.#mode === Mode.Done) return;
    this.#finalError = err;
    this.#mode = Mode.Done;
    this.#sink = undefined;
    this.#signal.removeEventListener('abort', this.#onAbort);
    const d = this.#onDone;
    this.#onDone = undefined;
    if (d === undefined) return;
    if (Array.isArray(d)) for (const fn of d) fn(err);
    else d(err);
  }
}
