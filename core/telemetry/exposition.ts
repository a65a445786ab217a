// Reads the Prometheus text exposition format (what /metrics serves) back into samples, for
// `meshlet ctl stat`. Only what prom-client writes is needed: `name{l="v",…} value` lines, comments
// skipped, label values with \\, \" and \n escapes. No timestamps, no exemplars.
import { meshError } from '../errors.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

function parseValue(s: string): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  const v = Number(s);
  if (s === '' || Number.isNaN(v)) throw new Error(`bad value "${s}"`);
  return v;
}

/** Parses an exposition; `keep` limits the samples returned to the metric names it accepts. Throws BAD_REQUEST naming the line. */
export function parseExposition(text: string, keep?: (name: string) => boolean): Sample[] {
  const out: Sample[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      const m = NAME.exec(line);
      if (!m) throw new Error('expected a metric name');
      const name = m[0];
      if (keep && !keep(name)) continue;
      let pos = name.length;
      const labels: Record<string, string> = {};
      if (line[pos] === '{') {
        pos++;
        for (;;) {
          while (line[pos] === ' ' || line[pos] === ',') pos++;
          if (line[pos] === '}') {
            pos++;
            break;
          }
          const lm = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(pos));
          if (!lm || line[pos + lm[0].length] !== '=' || line[pos + lm[0].length + 1] !== '"') throw new Error('malformed label');
          pos += lm[0].length + 2;
          let v = '';
          for (;;) {
            const c = line[pos++];
            if (c === undefined) throw new Error('unterminated label value');
            if (c === '"') break;
            if (c === '\\') {
              const e = line[pos++];
              v += e === 'n' ? '\n' : (e ?? '');
            } else v += c;
          }
          labels[lm[0]] = v;
        }
      }
      const rest = line.slice(pos).trim().split(/\s+/);
      out.push({ name, labels, value: parseValue(rest[0] ?? '') });
    } catch (e) {
      throw meshError('BAD_REQUEST', `metrics exposition line ${i + 1}: ${(e as Error).message}: ${line.slice(0, 120)}`, { line: i + 1 });
    }
  }
  return out;
}
