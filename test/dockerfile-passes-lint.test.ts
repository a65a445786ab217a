// The Dockerfile passes a real Dockerfile linter (dockerfilelint, from npm; hadolint is not
// installable here) and keeps the properties the README promises.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './harness/process.js';
import { run } from './harness/container.js';

const DOCKERFILE = path.join(ROOT, 'Dockerfile');
const text = readFileSync(DOCKERFILE, 'utf8');

describe('Dockerfile', () => {
  it('has no dockerfilelint findings (apart from the tag of an ARG base, whose default is checked below)', async () => {
    const r = await run(path.join(ROOT, 'node_modules/.bin/dockerfilelint'), ['-o', 'json', DOCKERFILE], { timeoutMs: 30_000 });
    const report = JSON.parse(r.stdout) as { files: Array<{ issues: Array<{ line: string; content: string; title: string }> }> };
    // dockerfilelint cannot see through `FROM ${BASE_IMAGE}`: the tag lives in the ARG default.
    const findings = report.files.flatMap((f) => f.issues).filter((i) => !(i.title === 'Base Image Missing Tag' && i.content.startsWith('FROM ${BASE_IMAGE}')));
    expect(findings).toEqual([]);
    expect(text).toMatch(/^ARG BASE_IMAGE=node:20-bookworm-slim$/m);
  });

  it('is multi-stage, runs as a non-root user, health-checks /ready and defaults to `meshlet sidecar`', () => {
    expect(text.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^USER 10001:10001$/m);
    expect(text).toMatch(/^HEALTHCHECK .*\n\s+CMD \["node"/m);
    expect(text).toMatch(/HEALTHCHECK_URL=http:\/\/127\.0\.0\.1:15000\/ready/);
    expect(text).toMatch(/^ENTRYPOINT \["node", ("--[^"]+", )*"\/app\/dist\/cli\/meshlet\.js"\]$/m);
    expect(text).toMatch(/^CMD \["sidecar"\]$/m);
    expect(text).toMatch(/npm ci --omit=dev/);
  });
});
