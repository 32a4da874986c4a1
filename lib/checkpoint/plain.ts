/** Unpickled values as plain JSON: what `inspect` prints and what a run's config is read from. */
import { PyGlobal, PyObject, PySlice, dictGet, type PyValue } from './pyvalue.js';
import { TensorRef } from './tensor-ref.js';

/** True for an omegaconf object (DictConfig, ListConfig, a value node). */
export function isOmegaConf(v: PyValue | undefined): boolean {
  return v instanceof PyObject && v.$class.startsWith('omegaconf.');
}

/**
 * A JSON-friendly copy of an unpickled value: dicts → objects (non-string keys stringified), tuples and
 * sets → arrays, omegaconf DictConfig / ListConfig / value nodes → their content, tensors and other
 * records → `{ $tensor }` / `{ $class }` stubs. Depth- and cycle-bounded.
 */
export function toPlain(v: PyValue | undefined, depth = 0, seen: Set<object> = new Set(), budget: { nodes: number } = { nodes: 100_000 }): unknown {
  if (v === undefined || v === null || typeof v === 'boolean' || typeof v === 'string') return v ?? null;
  // Shared sub-objects are expanded at each use; the budget keeps a DAG of 2^60 paths from hanging us.
  if (--budget.nodes < 0) return '<truncated>';
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'bigint') return v.toString();
  if (depth > 64) return '<nested too deep>';
  if (seen.has(v)) return '<cycle>';
  if (v instanceof TensorRef) return { $tensor: v.dtype, shape: [...v.shape] };
  if (v instanceof Uint8Array) return { $bytes: v.length };
  if (v instanceof PyGlobal) return { $global: v.$global };
  if (v instanceof PySlice) return { $slice: [toPlain(v.start), toPlain(v.stop), toPlain(v.step)] };
  seen.add(v);
  try {
    const inner = (x: PyValue | undefined): unknown => toPlain(x, depth + 1, seen, budget);
    if (Array.isArray(v)) return v.map(inner);
    if (v instanceof Set) return [...v].map(inner);
    if (v instanceof Map) return plainDict(v, inner);
    if (v instanceof PyObject) return plainObject(v, inner);
    if (v instanceof Object && 'key' in v && 'dtype' in v) return { $storage: (v as { key: string }).key };
    return null;
  } finally {
    seen.delete(v);
  }
}

/** A dict as an object; non-string keys stringified. */
function plainDict(v: Map<PyValue, PyValue>, inner: (x: PyValue | undefined) => unknown): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, x] of v) {
    // defineProperty: a "__proto__" key from a file must stay data, not become a prototype.
    Object.defineProperty(o, typeof k === 'string' ? k : String(inner(k)), {
      value: inner(x),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return o;
}

/** An omegaconf node as its content, a dict / list subclass as its items, any other record as a `{ $class }` stub. */
function plainObject(v: PyObject, inner: (x: PyValue | undefined) => unknown): unknown {
  if (isOmegaConf(v)) {
    const content = dictGet(v.state ?? null, '_content');
    if (content !== undefined && (content instanceof Map || Array.isArray(content))) return inner(content);
    const val = dictGet(v.state ?? null, '_val');
    if (val !== undefined) return inner(val);
    return content === undefined ? null : inner(content);
  }
  if (v.dictItems) return inner(v.dictItems);
  if (v.listItems) return inner(v.listItems);
  return { $class: v.$class };
}
