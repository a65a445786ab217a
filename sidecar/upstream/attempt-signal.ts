// The abort signal of one request or attempt. On Node 20 `new AbortController()` costs ~7 µs of CPU
// (its signal is an EventTarget whose prototype is swapped after construction), and the sidecar needs
// one per request and one per attempt. undici takes any object with aborted/reason and
// add/removeEventListener, so both get this plain one.

import type { CancelSignal } from '../../core/handler.js';

/** What UpstreamPool needs of a signal; a real AbortSignal fits as well. */
export type UpstreamSignal = CancelSignal;

export class AttemptSignal implements UpstreamSignal {
  aborted = false;
  reason: unknown = undefined;
  // undici registers one listener per request; an array only if something adds a second.
  #listener: (() => void) | undefined;
  #more: Array<() => void> | undefined;

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return; // like an AbortSignal: the event fired already and will not again
    if (this.#listener === undefined) this.#listener = listener;
    else (this.#more ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.#listener === listener) this.#listener = undefined;
    else if (this.#more) {
      const i = this.#more.indexOf(listener);
      if (i !== -1) this.#more.splice(i, 1);
    }
  }

  /** Aborts with `reason` (first call wins); each listener runs once, as with { once: true }. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const first = this.#listener;
    const more = this.#more;
    this.#listener = undefined;
    this.#more = undefined;
    if (first) run(first);
    if (more) for (const l of more) run(l);
  }
}

// A throwing listener must not stop the others; like EventTarget, report it as uncaught.
function run(listener: () => void): void {
  try {
    listener();
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}
