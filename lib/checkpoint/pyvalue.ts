/**
 * How unpickled Python values look in JS.
 *
 *   None → null · bool → boolean · float → number · int → number, or bigint beyond ±2^53
 *   str → string · bytes / bytearray → Uint8Array
 *   list → array · tuple → frozen array marked as a tuple (`isTuple`) · set / frozenset → Set
 *   dict, OrderedDict, defaultdict → Map (keys keep their Python type: an int key stays a number;
 *     a tuple key is compared by identity). `getPyState(map)` returns an OrderedDict's `__dict__`
 *     (a state_dict's `_metadata`).
 *   a tensor → TensorRef (lazy); a storage → TorchStorage
 *   a global referenced but not called (a class, a dtype) → PyGlobal
 *   any other object → PyObject, an inert record of its class name, constructor arguments and state.
 */
import type { TensorRef, TorchStorage } from './tensor-ref.js';

export type PyDict = Map<PyValue, PyValue>;

export type PyValue =
  null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyDict | Set<PyValue> | PyObject | PyGlobal | PySlice | TensorRef | TorchStorage;

/** A reference to a Python global (`module.name`) that was never called. */
export class PyGlobal {
  constructor(readonly $global: string) {}
  get module(): string {
    return this.$global.slice(0, this.$global.lastIndexOf('.'));
  }
  get name(): string {
    return this.$global.slice(this.$global.lastIndexOf('.') + 1);
  }
}

/**
 * An instance of a class the reader does not materialise. Nothing of the class ever runs: the record
 * holds what the pickle said — constructor arguments, `__setstate__` state, appended items.
 */
export class PyObject {
  /** Arguments of the REDUCE / NEWOBJ that created it. */
  args: PyValue[];
  /** Keyword arguments (NEWOBJ_EX). */
  kwargs: PyDict | null = null;
  /** What BUILD passed to `__setstate__` (usually a dict of attributes); undefined if never built. */
  state: PyValue | undefined = undefined;
  /** Items APPENDed to it (list subclasses). */
  listItems: PyValue[] | null = null;
  /** Items SETITEMed on it (dict subclasses such as Lightning's AttributeDict). */
  dictItems: PyDict | null = null;
  constructor(
    readonly $class: string,
    args: PyValue[] = [],
  ) {
    this.args = args;
  }
}

export class PySlice {
  constructor(
    readonly start: PyValue,
    readonly stop: PyValue,
    readonly step: PyValue,
  ) {}
}

const tuples = new WeakSet<object>();
const pyStates = new WeakMap<object, PyValue>();

/** Marks (and freezes) an array as a Python tuple; the writers emit it as a tuple. */
export function makeTuple<T>(items: T[]): T[] {
  tuples.add(items);
  return Object.freeze(items) as T[];
}

export function isTuple(v: unknown): boolean {
  return Array.isArray(v) && tuples.has(v);
}

export function isDict(v: unknown): v is PyDict {
  return v instanceof Map;
}

/** The `__dict__` state BUILD attached to a dict / OrderedDict (e.g. a state_dict's `_metadata`). */
export function getPyState(obj: object): PyValue | undefined {
  return pyStates.get(obj);
}

export function setPyState(obj: object, state: PyValue): void {
  pyStates.set(obj, state);
}

/** `dict[key]` for string keys, tolerating a PyObject dict subclass (its SETITEMed items). */
export function dictGet(d: PyValue | undefined, key: string): PyValue | undefined {
  if (d instanceof Map) return d.get(key);
  if (d instanceof PyObject) {
    if (d.dictItems?.has(key)) return d.dictItems.get(key);
    if (d.state instanceof Map) return d.state.get(key);
  }
  return undefined;
}
