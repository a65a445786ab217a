// YAML/JSON text → validated, normalized, frozen MeshConfig, or every violation with path and line:column.
import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { normalize, type MeshConfig } from './normalize.js';
import { meshConfigSchema, type MeshConfigInput } from './schema.js';
import { formatPath, type ConfigPath, type Violation } from './violation.js';

export type ParseResult =
  | { ok: true; config: MeshConfig; input: MeshConfigInput }
  | { ok: false; violations: Violation[] };

function issueMessage(issue: z.core.$ZodIssue): { path: ConfigPath; message: string }[] {
  const path = issue.path as ConfigPath;
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => ({ path: [...path, k], message: 'unknown field' }));
    case 'invalid_union': {
      // Report the branch that got furthest instead of a bare "invalid input".
      const branches = issue.errors.filter((b) => b.length > 0);
      const best = branches.find((b) => b.every((i) => i.code !== 'invalid_type')) ?? branches[0];
      if (best) return best.flatMap((i) => issueMessage({ ...i, path: [...path, ...i.path] } as z.core.$ZodIssue));
      return [{ path, message: issue.message }];
    }
    case 'invalid_type':
      return [{ path, message: `expected ${issue.expected}${issue.input === undefined ? ' (missing)' : `, got ${describe(issue.input)}`}` }];
    default:
      return [{ path, message: issue.message }];
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

function locate(doc: Document | undefined, lc: LineCounter | undefined, path: ConfigPath): { line?: number; column?: number } {
  if (!doc || !lc) return {};
  // Walk as deep as the path exists (an unknown or missing field points at its parent).
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) {
      // For a map key that exists, point at the key rather than at its value.
      let offset = node.range[0];
      if (n > 0) {
        const parent = doc.getIn(path.slice(0, n - 1), true) as { items?: Array<{ key: unknown }> } | undefined;
        const pair = parent?.items?.find((it) => isNode(it.key) && (it.key as { value?: unknown }).value === path[n - 1]);
        const key = pair?.key as { range?: [number, number, number] } | undefined;
        if (key?.range) offset = key.range[0];
      }
      const pos = lc.linePos(offset);
      return { line: pos.line, column: pos.col };
    }
  }
  return {};
}

function validate(value: unknown, doc?: Document, lc?: LineCounter): ParseResult {
  const parsed = meshConfigSchema.safeParse(value);
  if (!parsed.success) {
    const violations = parsed.error.issues.flatMap(issueMessage).map((v) => ({ path: formatPath(v.path), message: v.message, ...locate(doc, lc, v.path) }));
    return { ok: false, violations: dedupe(violations) };
  }
  const { config, violations } = normalize(parsed.data);
  if (violations.length > 0) return { ok: false, violations: violations.map((v) => ({ path: formatPath(v.path), message: v.message, ...locate(doc, lc, v.path) })) };
  return { ok: true, config, input: parsed.data };
}

function dedupe(vs: Violation[]): Violation[] {
  const seen = new Set<string>();
  return vs.filter((v) => {
    const k = `${v.path}\u0000${v.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Parses YAML (JSON is YAML too), validates it and returns the frozen config or every violation. */
export function parseMeshConfig(text: string): ParseResult {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      violations: doc.errors.map((e) => {
        const pos = lc.linePos(e.pos[0]);
        return { path: '(syntax)', message: e.message.split('\n')[0]!, line: pos.line, column: pos.col };
      }),
    };
  }
  const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
  if (value === null || value === undefined) return { ok: false, violations: [{ path: '(root)', message: 'the config is empty', line: 1, column: 1 }] };
  return validate(value, doc, lc);
}

/** Validates an already-parsed value (e.g. a JSON body, or a config from the store). */
export function validateMeshConfig(value: unknown): ParseResult {
  return validate(value);
}
