import { describe, expect, it } from 'vitest';
import { normalize } from '../core/config/normalize.js';
import type { MeshConfigInput } from '../core/config/schema.js';
import type { Backend } from './backend.js';
import { RouteTable, type CompiledRoute } from './route-table.js';

/** Builds a table the way runtime.ts does, from a config, with placeholder handlers. */
function table(input: MeshConfigInput): RouteTable {
  const { config, violations } = normalize(input);
  expect(violations).toEqual([]);
  const compiled = (name: string, service: string, match: CompiledRoute['match']): CompiledRoute => ({
    name,
    service,
    match,
    handler: async () => ({ status: 200, headers: {}, body: null }),
    upgradeBackend: {} as Backend, // not used by the table
  });
  const hosts = new Map<string, string>();
  for (const s of config.services.values()) for (const h of s.hosts) hosts.set(h, s.name);
  const byService = new Map<string, CompiledRoute[]>();
  const byHost = new Map<string, CompiledRoute[]>();
  for (const r of config.routes) {
    const [map, key] = r.service !== null ? [byService, r.service] : [byHost, r.host!];
    map.set(key, [...(map.get(key) ?? []), compiled(r.name, r.service ?? r.backends[0]!.service, r)]);
  }
  for (const s of config.services.values()) byService.set(s.name, [...(byService.get(s.name) ?? []), compiled('default', s.name, null)]);
  return new RouteTable(hosts, byService, byHost);
}

const services = { users: { hosts: ['users.mesh.test'] }, billing: {} };
const t = table({
  services,
  routes: [
    { name: 'exact', match: { service: 'users', path: '/health' }, backends: [{ service: 'users' }] },
    { name: 'canary', match: { service: 'users', pathPrefix: '/api/', headers: { 'x-canary': '1' } }, backends: [{ service: 'users' }] },
    { name: 'writes', match: { service: 'users', pathPrefix: '/api/', methods: ['POST', 'PUT'] }, backends: [{ service: 'users' }] },
    { name: 'numeric', match: { service: 'users', pathRegex: '^/users/\\d+$' }, backends: [{ service: 'users' }] },
    { name: 'beta', match: { service: 'users', headers: { 'x-client': { prefix: 'beta-' } } }, backends: [{ service: 'users' }] },
    { name: 'tagged', match: { service: 'users', headers: { 'x-tag': { regex: '^(red|blue)$' } } }, backends: [{ service: 'users' }] },
    { name: 'anonymous', match: { service: 'users', headers: { authorization: { present: false } }, pathPrefix: '/private/' }, backends: [{ service: 'users' }] },
    { name: 'external', match: { host: 'api.example.test' }, backends: [{ service: 'billing' }] },
  ],
});

const route = (service: string | undefined, path: string, opts: { method?: string; headers?: Record<string, string | string[]>; host?: string } = {}): string | undefined =>
  t.resolve(service, opts.host ?? service ?? '', opts.method ?? 'GET', path, opts.headers ?? {})?.name;

describe('RouteTable', () => {
  it('maps a service name and its extra hosts to the service', () => {
    expect(t.serviceFor('users')).toBe('users');
    expect(t.serviceFor('users.mesh.test')).toBe('users');
    expect(t.serviceFor('nobody')).toBeUndefined();
  });

  it('falls back to the service\'s default route', () => {
    expect(route('users', '/other')).toBe('default');
    expect(route('billing', '/anything')).toBe('default');
  });

  it('matches exact paths, ignoring the query string', () => {
    expect(route('users', '/health')).toBe('exact');
    expect(route('users', '/health?verbose=1')).toBe('exact');
    expect(route('users', '/health/deep')).toBe('default');
  });

  it('tries routes in order: the first match wins', () => {
    expect(route('users', '/api/x', { method: 'POST', headers: { 'x-canary': '1' } })).toBe('canary');
    expect(route('users', '/api/x', { method: 'POST' })).toBe('writes');
    expect(route('users', '/api/x', { method: 'GET' })).toBe('default');
  });

  it('matches path regexes', () => {
    expect(route('users', '/users/42')).toBe('numeric');
    expect(route('users', '/users/ada')).toBe('default');
  });

  it('matches headers by exact value, prefix, regex and absence', () => {
    expect(route('users', '/api/x', { headers: { 'x-canary': '2' } })).toBe('default');
    expect(route('users', '/x', { headers: { 'x-client': 'beta-7' } })).toBe('beta');
    expect(route('users', '/x', { headers: { 'x-client': 'prod-7' } })).toBe('default');
    expect(route('users', '/x', { headers: { 'x-tag': 'red' } })).toBe('tagged');
    expect(route('users', '/x', { headers: { 'x-tag': 'green' } })).toBe('default');
    expect(route('users', '/private/a')).toBe('anonymous');
    expect(route('users', '/private/a', { headers: { authorization: 'Bearer x' } })).toBe('default');
  });

  it('joins a repeated header before matching it', () => {
    expect(route('users', '/x', { headers: { 'x-tag': ['red', 'blue'] } })).toBe('default');
    expect(route('users', '/x', { headers: { 'x-client': ['beta-1', 'other'] } })).toBe('beta');
  });

  it('answers host routes only when no service is addressed', () => {
    expect(route(undefined, '/pay', { host: 'api.example.test' })).toBe('external');
    expect(route(undefined, '/pay', { host: 'unknown.example.test' })).toBeUndefined();
  });
});
