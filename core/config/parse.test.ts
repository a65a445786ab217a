import { describe, expect, it } from 'vitest';
import { parseMeshConfig, validateMeshConfig } from './parse.js';

describe('parseMeshConfig', () => {
  it('collects every violation with its path and line:column', () => {
    const r = parseMeshConfig(
      [
        'services:',
        '  users:',
        '    endpoints:',
        '      - { address: 127.0.0.1:9101, weight: 3 }',
        '      - { address: nope, wieght: 2 }',
        '    timeout: 2x',
        '    retry: { attempts: 3, on: [connect-failure, bogus] }',
        'routes:',
        '  - name: r1',
        '    match: { service: orders }',
        '    backends: [ { service: users } ]',
      ].join('\n'),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const byPath = Object.fromEntries(r.violations.map((v) => [v.path, v]));
    expect(byPath['services.users.endpoints[1].address']).toMatchObject({ line: 5, column: 11 });
    expect(byPath['services.users.endpoints[1].wieght']).toMatchObject({ message: 'unknown field', line: 5 });
    expect(byPath['services.users.timeout']).toMatchObject({ line: 6 });
    expect(byPath['services.users.retry.on[1]']).toMatchObject({ line: 7 });
    // Cross-field rules are reported only once the shape is right; the shape errors come first.
    expect(r.violations.length).toBe(4);
  });

  it('reports cross-field violations (unknown services, bad regex, duplicate names) all at once', () => {
    const r = parseMeshConfig(`
services:
  users: { endpoints: [ { address: "127.0.0.1:9101" } ] }
routes:
  - name: a
    match: { service: orders, pathRegex: "([" }
    backends: [ { service: users }, { service: ghost } ]
  - name: a
    match: { service: users }
    backends: [ { service: users, weight: 0 } ]
`);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const paths = r.violations.map((v) => v.path);
    expect(paths).toEqual(
      expect.arrayContaining(['routes[0].match.service', 'routes[0].match.pathRegex', 'routes[0].backends[1].service', 'routes[1].name', 'routes[1].backends']),
    );
    expect(r.violations.find((v) => v.path === 'routes[0].match.service')?.line).toBe(6);
  });

  it('reports YAML syntax errors with their position', () => {
    const r = parseMeshConfig('services:\n  users: {\n');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.violations[0]).toMatchObject({ path: '(syntax)', line: expect.any(Number) });
  });

  it('applies defaults and converts durations', () => {
    const r = parseMeshConfig('services:\n  users:\n    timeout: 2s\n    retry: { perTryTimeout: 500ms, on: [gateway-error] }\n');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const users = r.config.services.get('users')!;
    expect(users.timeoutMs).toBe(2000);
    expect(users.retry.perTryTimeoutMs).toBe(500);
    expect([...users.retry.statuses].sort()).toEqual([502, 503, 504]);
    expect(users.retry.onConnectFailure).toBe(false);
    expect(users.loadBalancer).toBe('round-robin');
    expect(Object.isFrozen(users)).toBe(true);
  });

  it('leaves the access log off unless a telemetry.accessLog block is given', () => {
    const off = parseMeshConfig('services: {}\n');
    const on = parseMeshConfig('services: {}\ntelemetry: { accessLog: { minStatus: 500 } }\n');
    expect(off.ok && off.config.accessLog.enabled).toBe(false);
    expect(on.ok && on.config.accessLog).toEqual({ enabled: true, sampleRatio: 1, minStatus: 500 });
  });

  it('validates already-parsed JSON values the same way, without positions', () => {
    const r = validateMeshConfig({ services: { users: { timeout: 'soon' } } });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.violations[0]!.path).toBe('services.users.timeout');
    expect(r.violations[0]!.line).toBeUndefined();
  });
});
