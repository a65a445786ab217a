// `meshlet ctl` exit codes scripts rely on: 0 ok, 1 refused/invalid, 2 usage, 3 unreachable, 4 unauthorized.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { refusedAddress } from './harness/refused.js';
import { ctl, startControlPlane, tempDir } from './control-plane-fixture.js';

let cleanup: (() => Promise<void>) | undefined;
let dir: string;
let env: Record<string, string>;
afterAll(async () => {
  await stopAll();
  await cleanup?.();
});

beforeAll(async () => {
  const t = await tempDir('ctl-exit');
  ({ dir, cleanup } = t);
  const cp = await startControlPlane({ dataDir: path.join(dir, 'cp'), token: 'tk' });
  env = { MESHLET_CONTROL_PLANE: cp.url, MESHLET_TOKEN: 'tk' };
  await writeFile(path.join(dir, 'good.yaml'), 'services:\n  users: {}\n');
  await writeFile(path.join(dir, 'bad.yaml'), 'services:\n  users: { timeout: never }\n');
  await writeFile(path.join(dir, 'other.yaml'), 'services:\n  orders: {}\n');
}, 120_000);

describe('meshlet ctl exit codes', () => {
  it('0 when applied or unchanged, 1 when invalid, stale or missing', async () => {
    const ok = await ctl(['apply', '-f', path.join(dir, 'good.yaml')], env);
    expect([ok.code, ok.stdout.trim()]).toEqual([0, 'applied: version 1']);
    const bad = path.join(dir, 'bad.yaml');
    const [again, invalid, validate, cas, missing] = await Promise.all([
      ctl(['apply', '-f', path.join(dir, 'good.yaml'), '-o', 'yaml'], env),
      ctl(['apply', '-f', bad], env),
      ctl(['validate', '-f', bad], env),
      ctl(['apply', '-f', path.join(dir, 'other.yaml'), '--expected-version', '0'], env),
      ctl(['rollback', '42'], env),
    ]);
    expect(again.code).toBe(0);
    expect(parseYaml(again.stdout)).toMatchObject({ version: 1, unchanged: true });
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain(`${bad}:2:12: services.users.timeout:`);
    expect(validate.code).toBe(1);
    expect(cas.code).toBe(1);
    expect(cas.stderr).toContain('current version is 1');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('not in history');
    const history = await ctl(['history', '-o', 'json'], env);
    expect(history.code).toBe(0);
    expect((JSON.parse(history.stdout) as { versions: unknown[] }).versions).toHaveLength(1);
  }, 240_000);

  it('2 on usage mistakes', async () => {
    const runs = await Promise.all([
      ctl(['frobnicate'], env),
      ctl(['apply'], env),
      ctl(['get', 'everything'], env),
      ctl(['apply', '-f', path.join(dir, 'no-such-file.yaml')], env),
      ctl(['status', '--control-plane', 'ftp://x'], env),
    ]);
    expect(runs.map((r) => r.code)).toEqual([2, 2, 2, 2, 2]);
  }, 240_000);

  it('3 when the control plane cannot be reached, 4 when the token is wrong', async () => {
    const address = await refusedAddress();
    const [down, unauthorized] = await Promise.all([ctl(['status', '--control-plane', `http://${address}`], env), ctl(['rollback', '1', '--token', 'wrong'], env)]);
    expect(down.code).toBe(3);
    expect(down.stderr).toContain(`cannot reach the control plane at http://${address}`);
    expect(unauthorized.code).toBe(4);
  }, 240_000);
});
