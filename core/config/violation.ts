export type ConfigPath = ReadonlyArray<string | number>;

/** One reason a config is refused: where (path, and line:column when parsed from text) and why. */
export interface Violation {
  path: string;
  message: string;
  line?: number;
  column?: number;
}

export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out === '' ? '(root)' : out;
}

export function formatViolation(v: Violation, source?: string): string {
  const where = v.line !== undefined ? `${source ?? '<config>'}:${v.line}:${v.column ?? 1}` : (source ?? '<config>');
  return `${where}: ${v.path}: ${v.message}`;
}
