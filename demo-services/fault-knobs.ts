// The faults a demo service injects into its own answers, settable at start (flags) and at run time
// (POST /fault). One object per process; the request path only reads it.
import { z } from 'zod';
import { meshError } from '../core/errors.js';

export interface FaultSettings {
  /** Share of requests answered 503 (0..1). */
  errorRate: number;
  /** Added before every answer. */
  latencyMs: number;
  /** Never answer (until the caller gives up). */
  hang: boolean;
}

const faultUpdateSchema = z.strictObject({
  errorRate: z.number().min(0).max(1).optional(),
  latencyMs: z.int().min(0).max(600_000).optional(),
  hang: z.boolean().optional(),
  crash: z.literal(true).optional(),
});

export type FaultUpdate = z.infer<typeof faultUpdateSchema>;

/** What to do with one request. */
export interface FaultDecision {
  hang: boolean;
  latencyMs: number;
  fail: boolean;
}

export class FaultKnobs {
  #settings: Readonly<FaultSettings>;
  readonly #random: () => number;

  constructor(initial: Partial<FaultSettings> = {}, random: () => number = Math.random) {
    this.#random = random;
    this.#settings = Object.freeze({ errorRate: 0, latencyMs: 0, hang: false });
    this.update(initial);
  }

  get settings(): Readonly<FaultSettings> {
    return this.#settings;
  }

  /**
   * Validates a whole update first and applies it only when every field is good, so a rejected
   * update changes nothing. Returns whether a crash was asked for (the server does the crashing).
   * Throws MeshError BAD_REQUEST listing every bad field with its reason.
   */
  update(input: unknown): { crash: boolean; settings: Readonly<FaultSettings> } {
    const parsed = faultUpdateSchema.safeParse(input);
    if (!parsed.success) {
      const violations = parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(body)', reason: i.message }));
      throw meshError('BAD_REQUEST', `invalid fault settings: ${violations.map((v) => `${v.path}: ${v.reason}`).join('; ')}`, { violations });
    }
    const { crash, ...rest } = parsed.data;
    const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as Partial<FaultSettings>;
    this.#settings = Object.freeze({ ...this.#settings, ...defined });
    return { crash: crash === true, settings: this.#settings };
  }

  decide(): FaultDecision {
    const s = this.#settings;
    return { hang: s.hang, latencyMs: s.latencyMs, fail: s.errorRate > 0 && this.#random() < s.errorRate };
  }
}
