// Unknown keys are mistakes: `optimiser: {…}` or `learning_rate` would otherwise be dropped without a word
// and the run would train with defaults. These helpers name the unknown key and the closest valid one.
import type { z } from 'zod';
import { TorchSslError, type ErrorCode } from './errors.js';

/** Edit distance (insertions, deletions, substitutions, adjacent transpositions), case-insensitive. */
function distance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

const normalise = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '');

/** The candidate closest to `word`, or undefined when none is plausibly what was meant. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    // learning_rate ~ learningRate, lr: normalised equality and prefixes count as close.
    const n = normalise(word), m = normalise(c);
    // A prefix (pool → pooling) counts as one edit, the nearer length winning ties (valLabel → valLabels, not val).
    const prefix = Math.min(n.length, m.length) >= 2 && (m.startsWith(n) || n.startsWith(m));
    const d = n === m ? 0 : Math.min(distance(word, c), prefix ? 1 + Math.abs(m.length - n.length) / 100 : Infinity);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function unknownKeyError(code: ErrorCode, where: string, key: string, allowed: readonly string[]): TorchSslError {
  const near = closest(key, allowed);
  const hint = near !== undefined ? `; did you mean ${where ? `${where}.` : ''}${near}?` : '';
  return new TorchSslError(code, `${where ? `${where}.` : ''}${key}: unknown key${hint} (valid: ${allowed.join(', ')})`, { key: where ? `${where}.${key}` : key, suggestion: near });
}

/** Throws when `obj` has a key outside `allowed` (own enumerable keys whose value is not undefined). */
export function checkKeys(obj: object, allowed: readonly string[], where: string, code: ErrorCode = 'ERR_INVALID_ARG'): void {
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || allowed.includes(k)) continue;
    const near = closest(k, allowed);
    throw new TorchSslError(code, `${where}: unknown key "${k}"${near !== undefined ? `; did you mean "${near}"?` : ''} (valid: ${allowed.join(', ')})`, { key: k, suggestion: near });
  }
}

type AnySchema = z.ZodType & { def: { type: string }; unwrap?: () => AnySchema; shape?: Record<string, AnySchema>; options?: AnySchema[]; element?: AnySchema };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Walks `value` along a zod schema and throws ERR_CONFIG at the first key no object schema declares, at any
 * depth (through defaults, optionals, unions and arrays). `where` is the path printed before the key.
 */
export function checkSchemaKeys(value: unknown, schema: z.ZodType, where: string): void {
  let s = schema as AnySchema;
  while ((s.def.type === 'default' || s.def.type === 'optional' || s.def.type === 'nullable') && s.unwrap) s = s.unwrap();
  if (s.def.type === 'object' && s.shape && isPlainObject(value)) {
    const allowed = Object.keys(s.shape);
    for (const [k, v] of Object.entries(value)) {
      if (!allowed.includes(k)) throw unknownKeyError('ERR_CONFIG', where, k, allowed);
      checkSchemaKeys(v, s.shape[k]!, `${where}.${k}`);
    }
  } else if (s.def.type === 'array' && s.element && Array.isArray(value)) {
    value.forEach((v, i) => checkSchemaKeys(v, s.element!, `${where}[${i}]`));
  } else if (s.def.type === 'union' && s.options) {
    // The option the value's shape belongs to: an object option for an object, an array option for an array.
    const kind = Array.isArray(value) ? 'array' : isPlainObject(value) ? 'object' : undefined;
    for (const o of s.options) {
      let u = o;
      while ((u.def.type === 'default' || u.def.type === 'optional') && u.unwrap) u = u.unwrap();
      if (kind !== undefined && u.def.type === kind) {
        checkSchemaKeys(value, u, where);
        return;
      }
    }
  }
}
