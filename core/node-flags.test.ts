import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MESHLET_NODE_ENV, MESHLET_NODE_FLAGS } from './node-flags.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const envWords = Object.entries(MESHLET_NODE_ENV).map(([k, v]) => `${k}=${v}`);

describe('the node flags meshlet runs with', () => {
  it('are what the executable\'s shebang passes, and node accepts them', () => {
    const first = readFileSync(path.join(ROOT, 'cli/meshlet.ts'), 'utf8').split('\n')[0]!;
    expect(first).toBe(`#!/usr/bin/env -S ${[...envWords, 'node', ...MESHLET_NODE_FLAGS].join(' ')}`);
    // Run a probe the way the kernel runs the script: the interpreter, its one argument, the file.
    const probe = path.join(mkdtempSync(path.join(tmpdir(), 'meshlet-flags-')), 'probe.mjs');
    writeFileSync(probe, `console.log(JSON.stringify({ execArgv: process.execArgv, env: { ${Object.keys(MESHLET_NODE_ENV).map((k) => `${k}: process.env.${k}`).join(', ')} } }));\n`);
    const [interpreter, arg] = [first.slice(2, first.indexOf(' ')), first.slice(first.indexOf(' ') + 1)];
    const r = spawnSync(interpreter, [arg, probe], { encoding: 'utf8', env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}` } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ execArgv: [...MESHLET_NODE_FLAGS], env: { ...MESHLET_NODE_ENV } });
  });

  it('are what the image\'s ENTRYPOINT and ENV pass', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const entry = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    expect(entry).toEqual(['node', ...MESHLET_NODE_FLAGS, '/app/dist/cli/meshlet.js']);
    const env = [...dockerfile.matchAll(/^ENV (\S+)=(\S+)$/gm)].map((m) => `${m[1]}=${m[2]}`);
    expect(env).toEqual(expect.arrayContaining(envWords));
  });
});
