/**
 * A small parser for the Prometheus text exposition format (version 0.0.4), enough for reading
 * gateway samples: comments and HELP/TYPE lines are skipped, label values are unescaped, timestamps
 * are ignored. prom-client only writes this format, it does not read it.
 */

export interface Sample {
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

/** A line that is not a valid sample; `line` is 1-based. */
export class PromTextError extends Error {
  override readonly name = 'PromTextError';
  constructor(readonly line: number, message: string) {
    super(`line ${line}: ${message}`);
  }
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/** Parses every sample of a scrape. Throws PromTextError on the first malformed line. */
export function parsePromText(text: string): Sample[] {
  const samples: Sample[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    samples.push(parseSampleLine(line, i + 1));
  }
  return samples;
}

function parseSampleLine(line: string, lineNo: number): Sample {
  const nameMatch = NAME.exec(line);
  if (!nameMatch) throw new PromTextError(lineNo, 'expected a metric name');
  const name = nameMatch[0];
  let pos = name.length;
  const labels: Record<string, string> = {};
  if (line[pos] === '{') {
    pos++;
    for (;;) {
      while (line[pos] === ' ' || line[pos] === ',') pos++;
      if (line[pos] === '}') { pos++; break; }
      const labelMatch = LABEL_NAME.exec(line.slice(pos));
      if (!labelMatch) throw new PromTextError(lineNo, `expected a label name in ${name}`);
      pos += labelMatch[0].length;
      if (line[pos] !== '=' || line[pos + 1] !== '"') throw new PromTextError(lineNo, `expected ="value" after label ${labelMatch[0]}`);
      pos += 2;
      let value = '';
      for (;;) {
        const ch = line[pos];
        if (ch === undefined) throw new PromTextError(lineNo, 'unterminated label value');
        pos++;
        if (ch === '"') break;
        if (ch === '\\') {
          const escaped = line[pos++];
          value += escaped === 'n' ? '\n' : escaped ?? '';
        } else {
          value += ch;
        }
      }
      labels[labelMatch[0]] = value;
    }
  }
  const rest = line.slice(pos).trim().split(/\s+/);
  const rawValue = rest[0];
  if (rawValue === undefined || rawValue === '') throw new PromTextError(lineNo, `missing value for ${name}`);
  const value = parseValue(rawValue);
  if (value === null) throw new PromTextError(lineNo, `bad value '${rawValue.slice(0, 40)}' for ${name}`);
  return { name, labels, value };
}

/** Values as Go's ParseFloat reads them: special values in any case (prom-client writes `Nan`). */
function parseValue(raw: string): number | null {
  const lower = raw.toLowerCase();
  if (lower === 'nan') return NaN;
  if (lower === '+inf' || lower === 'inf' || lower === '+infinity' || lower === 'infinity') return Infinity;
  if (lower === '-inf' || lower === '-infinity') return -Infinity;
  const value = Number(raw);
  return Number.isNaN(value) || raw.trim() === '' ? null : value;
}

/** The value of an unlabelled sample (or the sum over label sets, for counters split by labels); null when absent. */
export function sampleValue(samples: readonly Sample[], name: string): number | null {
  let found = false;
  let sum = 0;
  for (const sample of samples) {
    if (sample.name !== name) continue;
    found = true;
    sum += sample.value;
  }
  return found ? sum : null;
}
