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
/** learning_rate, learningRate → 'lr': the first letter of each word. */
const initials = (s: string) =>
  s
    .split(/[-_\s]+|(?=[A-Z])/)
    .filter(Boolean)
    .map((w) => w[0]!.toLowerCase())
    .join('');

/** The candidate closest to `word`, or undefined when none is plausibly what was meant. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    // learning_rate ~ learningRate, lr: normalised equality and prefixes count as close.
    const n = normalise(word),
      m = normalise(c);
    // A prefix (pool → pooling) counts as one edit, the nearer length winning ties (valLabel → valLabels, not val).
    const prefix = Math.min(n.length, m.length) >= 2 && (m.startsWith(n) || n.startsWith(m));
    // An abbreviation by initials (learning_rate → lr) counts as one edit too.
    const abbreviation = m.length >= 2 && (initials(word) === m || initials(c) === n);
    const d = n === m ? 0 : Math.min(distance(word, c), prefix ? 1 + Math.abs(m.length - n.length) / 100 : Infinity, abbreviation ? 1 : Infinity);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** Throws when `obj` has a key outside `allowed` (own enumerable keys whose value is not undefined). */
export function checkKeys(obj: object, allowed: readonly string[], where: string, code: ErrorCode = 'ERR_INVALID_ARG'): void {
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || allowed.includes(k)) continue;
    const near = closest(k, allowed);
    throw new TorchSslError(code, `${where}: unknown key "${k}"${near !== undefined ? `; did you mean "${near}"?` : ''} (valid: ${allowed.join(', ')})`, {
      key: k,
      suggestion: near,
    });
  }
}

type AnySchema = z.ZodType & { def: { type: string }; unwrap?: () => AnySchema; shape?: Record<string, AnySchema>; options?: AnySchema[]; element?: AnySchema };

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The schema under defaults, optionals and nullables. */
function unwrapped(schema: AnySchema): AnySchema {
  let s = schema;
  while ((s.def.type === 'default' || s.def.type === 'prefault' || s.def.type === 'optional' || s.def.type === 'nullable') && s.unwrap) s = s.unwrap();
  return s;
}

/** An unknown key found by findUnknownKey: where it sits, the valid keys there, and the closest of them. */
export interface UnknownKey {
  /** Path to the object holding the key, e.g. ['optimizer'] or ['augmentation', '[0]']. */
  parent: string[];
  key: string;
  allowed: string[];
  suggestion: string | undefined;
}

/** Joins a path as written in a config: a.b[0].c */
export function joinPath(parts: readonly string[]): string {
  return parts.map((p, i) => (i > 0 && !p.startsWith('[') ? `.${p}` : p)).join('');
}

/**
 * Walks `value` along a zod schema and returns the first key that no object schema declares, at any depth
 * (through defaults, optionals, unions and arrays), or undefined when every key is known.
 */
export function findUnknownKey(value: unknown, schema: z.ZodType, parent: string[] = []): UnknownKey | undefined {
  const s = unwrapped(schema as AnySchema);
  if (s.def.type === 'object' && s.shape && isPlainObject(value)) {
    const allowed = Object.keys(s.shape);
    for (const [k, v] of Object.entries(value)) {
      if (!allowed.includes(k)) return { parent, key: k, allowed, suggestion: closest(k, allowed) };
      const inner = findUnknownKey(v, s.shape[k]!, [...parent, k]);
      if (inner) return inner;
    }
  } else if (s.def.type === 'array' && s.element && Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const inner = findUnknownKey(v, s.element, [...parent, `[${i}]`]);
      if (inner) return inner;
    }
  } else if (s.def.type === 'union' && s.options) {
    // The option the value's shape belongs to: an object option for an object, an array option for an array.
    const kind = Array.isArray(value) ? 'array' : isPlainObject(value) ? 'object' : undefined;
    const option = s.options.map(unwrapped).find((o) => o.def.type === kind);
    if (option) return findUnknownKey(value, option, parent);
  }
  return undefined;
}

/** `{ ...defaults, ...opts }` where an option given as `undefined` keeps its default (as if it were absent). */
export function withDefaults<D extends object, O extends object>(defaults: D, opts: O): D & O {
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  return { ...defaults, ...given } as D & O;
}
