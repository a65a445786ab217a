// Keeps a Prometheus label's cardinality bounded. Service, route and backend names come from the
// mesh config (bounded by it), but egress passthrough or a config churning names could still grow
// them without limit; past `limit` distinct values every new one is reported as OVERFLOW_VALUE.

export const OVERFLOW_VALUE = '_other';

export class BoundedLabel {
  readonly limit: number;
  #seen = new Set<string>();

  constructor(limit: number) {
    this.limit = limit;
  }

  /** The value to use as a label: itself while fewer than `limit` distinct values were seen. */
  value(v: string): string {
    if (this.#seen.has(v)) return v;
    if (this.#seen.size >= this.limit) return OVERFLOW_VALUE;
    this.#seen.add(v);
    return v;
  }

  /** Forget a value (an endpoint that left), so its slot can be reused. */
  forget(v: string): void {
    this.#seen.delete(v);
  }

  get size(): number {
    return this.#seen.size;
  }
}
