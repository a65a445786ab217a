// config/mesh.schema.json and docs/configuration.md are generated from core/config/schema.ts;
// this fails when someone changed the schema and did not run `npm run schema`.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configReferenceMarkdown, meshJsonSchema } from '../core/config/reference.js';
import { ROOT } from './harness/process.js';

describe('published config schema', () => {
  it('config/mesh.schema.json matches the schema in code', () => {
    const committed = JSON.parse(readFileSync(path.join(ROOT, 'config/mesh.schema.json'), 'utf8')) as unknown;
    expect(committed).toEqual(meshJsonSchema());
  });

  it('docs/configuration.md matches the schema in code', () => {
    expect(readFileSync(path.join(ROOT, 'docs/configuration.md'), 'utf8')).toBe(configReferenceMarkdown());
  });
});
