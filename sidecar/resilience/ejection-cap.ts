// Envoy's max_ejection_percent: the breakers of one service's endpoints share this cap so that a
// service-wide problem (or a bad deploy of the caller) cannot eject every endpoint. As in Envoy, one
// ejection is always allowed, so a service with few endpoints can still shed a broken one.
import { meshError } from '../../core/errors.js';

export class EjectionCap {
  readonly #maxEjectionPercent: number;
  /** Endpoints of the service; set by the owner whenever the endpoint set changes. */
  total = 0;
  #ejected = 0;

  constructor(maxEjectionPercent: number) {
    if (!(maxEjectionPercent >= 0 && maxEjectionPercent <= 100)) {
      throw meshError('INTERNAL', `maxEjectionPercent must be within 0..100, got ${maxEjectionPercent}`, { maxEjectionPercent });
    }
    this.#maxEjectionPercent = maxEjectionPercent;
  }

  /** Endpoints currently ejected (breaker open or half-open). */
  get ejected(): number {
    return this.#ejected;
  }

  mayEject(): boolean {
    return this.#ejected === 0 || this.#ejected < Math.floor((this.total * this.#maxEjectionPercent) / 100);
  }

  onEject(): void {
    this.#ejected++;
  }

  onRestore(): void {
    if (this.#ejected > 0) this.#ejected--;
  }
}
