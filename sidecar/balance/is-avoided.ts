// A retry passes the endpoint that just failed as `avoid`. Compared by address as well as identity,
// so it is still avoided when the endpoint set was rebuilt between the two attempts.
import type { BalancedEndpoint } from './balancer.js';

export function isAvoided(e: BalancedEndpoint, avoid: BalancedEndpoint | undefined): boolean {
  return avoid !== undefined && (e === avoid || e.address === avoid.address);
}
