// compose.yaml (the demo topology in containers) cannot be run here — no compose tool is
// installable — so this checks what can go wrong in it without one: every MESHLET_*/DEMO_* variable
// is a real flag of the command it configures (yargs rejects unknown ones at start), each sidecar
// shares its app's network namespace and points at the app's address, and the mesh config it
// seeds the control plane with is valid.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseMeshConfig } from '../core/config/parse.js';
import { MESHLET_NODE_FLAGS } from '../core/node-flags.js';
import { ROOT } from './harness/process.js';
import { run } from './harness/container.js';

interface ComposeService {
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
  network_mode?: string;
}
const compose = parse(readFileSync(path.join(ROOT, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
const services = Object.entries(compose.services);

/** The program and subcommand a service runs, and the env prefix it reads. */
function programOf(s: ComposeService): { script: string; args: string[]; prefix: string } {
  const entry = s.entrypoint ?? ['node', ...MESHLET_NODE_FLAGS, '/app/dist/cli/meshlet.js']; // the Dockerfile's ENTRYPOINT
  const at = entry.findIndex((e) => e.endsWith('.js'));
  const script = entry[at]!.replace('/app/', `${ROOT}/`);
  if (script.endsWith('meshlet.js')) return { script, args: [...entry.slice(at + 1), ...(s.entrypoint ? [] : (s.command ?? ['sidecar']).slice(0, 1))], prefix: 'MESHLET_' };
  return { script, args: [], prefix: 'DEMO_' };
}

const helpCache = new Map<string, Promise<string>>();
async function help(script: string, args: string[]): Promise<string> {
  const key = [script, ...args].join(' ');
  if (!helpCache.has(key)) helpCache.set(key, run(process.execPath, [script, ...args, '--help'], { timeoutMs: 100_000 }).then((r) => r.stdout));
  return helpCache.get(key)!;
}

describe('compose.yaml', () => {
  it('configures every service only with variables that are flags of its command', { timeout: 120_000 }, async () => {
    expect(services.length).toBeGreaterThanOrEqual(9);
    // One --help per distinct program, all at once: each is a Node start-up.
    const programs = new Map(services.map(([, s]) => programOf(s)).map((p) => [[p.script, ...p.args].join(' '), p]));
    await Promise.all([...programs.values()].map((p) => help(p.script, p.args)));
    for (const [name, s] of services) {
      const p = programOf(s);
      const text = await help(p.script, p.args);
      expect(text, `${name}: no --help from ${p.script} ${p.args.join(' ')}`).toMatch(/--help/);
      for (const key of Object.keys(s.environment ?? {})) {
        if (key === 'HEALTHCHECK_URL') continue; // Read by the image's HEALTHCHECK, not by meshlet.
        expect(key.startsWith(p.prefix), `${name}: ${key} is read by nothing (${p.script} reads ${p.prefix}*)`).toBe(true);
        const flag = `--${key.slice(p.prefix.length).toLowerCase().replaceAll('_', '-')}`;
        expect(text, `${name}: ${key} would be ${flag}, which ${p.args.join(' ') || p.script} does not have`).toMatch(new RegExp(`^\\s+${flag}\\s`, 'm'));
      }
    }
  });

  it('puts each sidecar in its app\'s network namespace, pointing at the app\'s address', () => {
    const sidecars = services.filter(([, s]) => s.network_mode?.startsWith('service:'));
    expect(sidecars.length).toBe(4);
    for (const [name, s] of sidecars) {
      const app = compose.services[s.network_mode!.slice('service:'.length)];
      expect(app, `${name}: ${s.network_mode} names no service`).toBeDefined();
      expect(s.environment?.MESHLET_APP, name).toBe(app!.environment?.DEMO_LISTEN);
    }
    expect(compose.services.orders!.environment?.DEMO_OUTBOUND).toBe('127.0.0.1:15001');
  });

  it('seeds the control plane with a valid mesh config that has the demo\'s services', () => {
    const file = compose.services['control-plane']!.environment!.MESHLET_CONFIG!.replace('/app/', `${ROOT}/`);
    const parsed = parseMeshConfig(readFileSync(file, 'utf8'));
    expect(parsed.ok, JSON.stringify(parsed)).toBe(true);
    if (parsed.ok) expect(Object.keys(parsed.input.services).sort()).toEqual(['orders', 'users']);
    const shifted = parseMeshConfig(readFileSync(path.join(ROOT, 'config/demo/mesh-shift-v2.yaml'), 'utf8'));
    expect(shifted.ok, JSON.stringify(shifted)).toBe(true);
  });
});
