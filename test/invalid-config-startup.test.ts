// An invalid config file stops start-up: exit code 1, every violation on stderr with file:line:column
// and its path, no stack trace, and nothing bound.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { spawnMeshlet, stopAll } from './harness/process.js';

afterAll(stopAll);

// Each case starts a real meshlet process; on a loaded 2-core machine that alone can take tens of seconds.
vi.setConfig({ testTimeout: 150_000 });

async function startWith(text: string | undefined, extra: string[] = [], listeners = ['--outbound', '127.0.0.1:0', '--inbound', '127.0.0.1:0', '--admin', '127.0.0.1:0']): Promise<{ code: number | null; output: string; file: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshlet-invalid-'));
  const file = path.join(dir, 'mesh.yaml');
  if (text !== undefined) writeFileSync(file, text);
  const proc = spawnMeshlet(['sidecar', '--service', 'orders', '--config', file, ...listeners, '--access-log', 'off', ...extra]);
  const code = await proc.exited;
  return { code, output: proc.output(), file };
}

const noStack = (out: string): void => {
  expect(out).not.toMatch(/^\s+at /m);
  expect(out).not.toMatch(/node:internal|\.js:\d+:\d+\)/);
};

describe.concurrent('invalid config at start-up', () => {
  it('lists every violation with file:line:column and exits 1', async () => {
    const yaml = [
      'services:', //                                   1
      '  users:', //                                    2
      '    endpoints:', //                              3
      '      - address: not-an-address', //             4
      '      - { address: "127.0.0.1:99999" }', //      5
      '    timeout: soon', //                           6
      '    loadBalancer: fastest', //                   7
      '    colour: blue', //                            8
      'routes:', //                                     9
      '  - name: r1', //                                10
      '    match: { service: nobody }', //              11
      '    backends: [ { service: ghost } ]', //        12
      '',
    ].join('\n');
    const { code, output, file } = await startWith(yaml);
    expect(code).toBe(1);
    const at = (line: number, p: string): RegExp => new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}:\\d+: ${p.replace(/[.[\]]/g, '\\$&')}`);
    expect(output).toMatch(at(4, 'services.users.endpoints[0].address'));
    expect(output).toMatch(at(6, 'services.users.timeout'));
    expect(output).toMatch(at(7, 'services.users.loadBalancer'));
    expect(output).toMatch(at(8, 'services.users.colour'));
    noStack(output);
    expect(output).not.toContain('"msg":"listening"');
  });

  it('reports cross-field violations (after the schema passes) with their lines', async () => {
    const yaml = [
      'services:',
      '  users:',
      '    endpoints: [ { address: "127.0.0.1:99999" } ]',
      'routes:',
      '  - name: r1',
      '    match: { service: nobody }',
      '    backends: [ { service: ghost } ]',
      '',
    ].join('\n');
    const { code, output, file } = await startWith(yaml);
    expect(code).toBe(1);
    expect(output).toContain(`${file}:3:`);
    expect(output).toMatch(/services\.users\.endpoints\[0\]\.address: port 99999 is out of range/);
    expect(output).toMatch(/:6:\d+: routes\[0\]\.match\.service: unknown service "nobody"/);
    expect(output).toMatch(/:7:\d+: routes\[0\]\.backends\[0\]\.service: unknown service "ghost"/);
    noStack(output);
  });

  it('reports a YAML syntax error with its position', async () => {
    const { code, output, file } = await startWith('services:\n  users: [\n    endpoints: {\n');
    expect(code).toBe(1);
    expect(output).toMatch(new RegExp(`${file.replace(/[.]/g, '\\.')}:\\d+:\\d+: \\(syntax\\)`));
    noStack(output);
  });

  it('reports a missing file without a stack trace', async () => {
    const { code, output } = await startWith(undefined);
    expect(code).toBe(1);
    expect(output).toMatch(/cannot read .*mesh\.yaml: ENOENT/);
    noStack(output);
  });

  it('reports a bad flag value without a stack trace', async () => {
    const { code, output } = await startWith('services: {}\n', [], ['--outbound', 'nonsense', '--inbound', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
    expect(code).toBe(1);
    expect(output).toContain('--outbound: expected HOST:PORT, got "nonsense"');
    noStack(output);
  });

  it('reports a listener flag given twice without a stack trace', async () => {
    const { code, output } = await startWith('services: {}\n', ['--admin', '127.0.0.1:0']);
    expect(code).toBe(1);
    expect(output).toContain('--admin: given more than once');
    noStack(output);
  });
});
