// The published forms of the config schema: JSON Schema for editors (config/mesh.schema.json) and the
// reference table of docs/configuration.md. Both are generated from core/config/schema.ts and a test
// fails when the committed files are stale (`npm run schema` rewrites them).
import { z } from 'zod';
import { meshConfigSchema } from './schema.js';

type JsonSchema = {
  type?: string | string[];
  description?: string;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  required?: string[];
};

export function meshJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(meshConfigSchema, { target: 'draft-2020-12', io: 'input' }) as Record<string, unknown>;
  return { $id: 'https://meshlet.dev/schemas/mesh.schema.json', title: 'meshlet mesh config', ...schema };
}

function typeOf(s: JsonSchema): string {
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((e) => JSON.stringify(e)).join(' \\| ');
  if (s.anyOf) return s.anyOf.map(typeOf).join(' \\| ');
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'any'}`;
  if (s.type === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object' && !s.properties) return 'map';
  let t = Array.isArray(s.type) ? s.type.join(' \\| ') : (s.type ?? 'any');
  if (s.pattern === '^\\d+(\\.\\d+)?(ms|s|m|h)$') t = 'duration';
  const range = s.minimum !== undefined || s.maximum !== undefined ? ` (${s.minimum ?? ''}..${s.maximum ?? ''})` : '';
  return t + range;
}

function walk(s: JsonSchema, path: string, rows: string[]): void {
  if (path) rows.push(`| \`${path}\` | ${typeOf(s)} | ${(s.description ?? '').replace(/\|/g, '\\|')} |`);
  if (s.properties) for (const [k, v] of Object.entries(s.properties)) walk(v, path ? `${path}.${k}` : k, rows);
  if (s.additionalProperties && typeof s.additionalProperties === 'object') walk(s.additionalProperties, `${path}.<name>`, rows);
  if (s.items && (s.items.properties || s.items.additionalProperties)) walk(s.items, `${path}[]`, rows);
  for (const alt of s.anyOf ?? []) if (alt.properties) for (const [k, v] of Object.entries(alt.properties)) walk(v, `${path}.${k}`, rows);
}

export function configReferenceMarkdown(): string {
  const rows: string[] = [];
  walk(meshJsonSchema() as JsonSchema, '', rows);
  return [
    '# Mesh config reference',
    '',
    '<!-- Generated from core/config/schema.ts by `npm run schema`; test/config-reference.test.ts keeps it in sync. -->',
    '',
    'The mesh config is YAML (or JSON). Editors that speak JSON Schema complete and check it with',
    '`config/mesh.schema.json` (add `# yaml-language-server: $schema=../config/mesh.schema.json` at the top of a file).',
    'Every violation is reported with its path and line:column; a config with any violation changes nothing.',
    '',
    '| field | type | meaning |',
    '| --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}
