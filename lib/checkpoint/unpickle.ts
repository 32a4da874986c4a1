/**
 * A restricted pickle virtual machine (protocols 0–5).
 *
 * Safety model: a pickle is a program whose only dangerous instructions are "look up a global" and
 * "call it". Here a global lookup yields an inert PyGlobal name; a call (REDUCE / NEWOBJ / OBJ / INST)
 * runs only functions from an allow-list of pure value constructors (`BUILTIN_CALLABLES`, plus the
 * tensor rebuilders the torch-file reader passes in). Calling anything else — a Lightning class, an
 * omegaconf node, `os.system` — yields a PyObject record of the name and arguments; BUILD stores state
 * on the record. Nothing from the file is ever executed.
 *
 * The machine is laid out like CPython's `Lib/pickle.py`: named opcodes (`OP`), a state object
 * (`Unpickler`) and one handler per opcode, found through a table indexed by the opcode byte (`DISPATCH`,
 * pickle.py's `_Unpickler.dispatch`). It is a loop with explicit stacks (no recursion), so nesting depth
 * is bounded only by memory; the stack, the memo and every read are bounds-checked, and anything
 * malformed throws ERR_CHECKPOINT_FORMAT naming the source, the byte offset and the opcode.
 */
import { TorchSslError } from '../errors.js';
import { PyGlobal, PyObject, PySlice, isTuple, makeTuple, setPyState, type PyDict, type PyValue } from './pyvalue.js';

export type PyCallable = (args: PyValue[], kwargs: PyDict | null) => PyValue;

export interface UnpickleOptions {
  /** Names the data in error messages (e.g. "model.ckpt: archive/data.pkl"). */
  source?: string;
  /** Resolves persistent ids (torch storages). Without it a persistent id is an error. */
  persistentLoad?: (pid: PyValue) => PyValue;
  /** Extra allowed callables by `module.name`, consulted before the built-in table. */
  callables?: ReadonlyMap<string, PyCallable>;
  /** Start offset in `data` (for files holding several pickles back to back). */
  offset?: number;
  /** Upper bounds on stack depth and memo size (default 50 000 000 each). */
  maxStack?: number;
  maxMemo?: number;
  /**
   * Elements the allow-listed constructors may copy in total (default 4 × data length + 10⁶; legitimate checkpoints copy almost nothing), so a
   * pickle that re-copies one big memoised dict thousands of times is refused instead of running for hours.
   */
  maxWork?: number;
}

export interface UnpickleResult {
  value: PyValue;
  /** Offset just past the STOP opcode. */
  end: number;
}

/** Thrown when the data ends before STOP; a caller reading a stream can fetch more and retry. */
export class PickleTruncatedError extends TorchSslError {
  constructor(message: string) {
    super('ERR_CHECKPOINT_FORMAT', message);
  }
}

const MARK_OBJ = Symbol('mark');
type StackItem = PyValue | typeof MARK_OBJ;

/** Python 2 module names as Python 3 maps them (pickle's fix_imports). */
const MODULE_ALIASES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

function pyIterate(v: PyValue, fail: () => never): PyValue[] {
  if (Array.isArray(v)) return v;
  if (v instanceof Set) return [...v];
  if (v instanceof Map) return [...v.keys()];
  if (typeof v === 'string') return [...v];
  if (v instanceof Uint8Array) return [...v];
  if (v instanceof PyObject && v.listItems) return v.listItems;
  return fail();
}

function dictFrom(items: PyValue[], fail: () => never): PyDict {
  const m: PyDict = new Map();
  for (const pair of items) {
    if (!Array.isArray(pair) || pair.length !== 2) fail();
    m.set(pair[0]!, pair[1]!);
  }
  return m;
}

/**
 * Pure constructors a pickle may call. Each returns a plain value or, for arguments it does not
 * understand, an inert record (via `undefined` → caller records it).
 */
const BUILTIN_CALLABLES: ReadonlyMap<string, (args: PyValue[]) => PyValue | undefined> = new Map<string, (args: PyValue[]) => PyValue | undefined>([
  ['collections.OrderedDict', (a) => (a.length === 0 ? new Map() : a[0] instanceof Map ? new Map(a[0]) : safe(() => dictFrom(pyIterate(a[0]!, fail), fail)))],
  // The default factory is dropped: a defaultdict is read as the mapping it holds.
  ['collections.defaultdict', (a) => (a.length <= 1 ? new Map() : a[1] instanceof Map ? new Map(a[1]) : undefined)],
  ['builtins.set', (a) => (a.length === 0 ? new Set() : safe(() => new Set(pyIterate(a[0]!, fail))))],
  ['builtins.frozenset', (a) => (a.length === 0 ? new Set() : safe(() => new Set(pyIterate(a[0]!, fail))))],
  ['builtins.list', (a) => (a.length === 0 ? [] : safe(() => [...pyIterate(a[0]!, fail)]))],
  ['builtins.tuple', (a) => (a.length === 0 ? makeTuple([]) : safe(() => makeTuple([...pyIterate(a[0]!, fail)])))],
  ['builtins.dict', (a) => (a.length === 0 ? new Map() : a[0] instanceof Map ? new Map(a[0]) : safe(() => dictFrom(pyIterate(a[0]!, fail), fail)))],
  ['builtins.int', (a) => toInt(a[0] ?? 0)],
  ['builtins.long', (a) => toInt(a[0] ?? 0)],
  ['builtins.float', (a) => toFloat(a[0] ?? 0)],
  ['builtins.bool', (a) => (a.length === 0 ? false : truthy(a[0]!))],
  [
    'builtins.str',
    (a) => (a.length === 0 ? '' : typeof a[0] === 'string' ? a[0] : typeof a[0] === 'number' || typeof a[0] === 'bigint' ? String(a[0]) : undefined),
  ],
  ['builtins.bytes', (a) => toBytes(a)],
  ['builtins.bytearray', (a) => toBytes(a)],
  [
    'builtins.slice',
    (a) => (a.length === 1 ? new PySlice(null, a[0]!, null) : a.length <= 3 ? new PySlice(a[0] ?? null, a[1] ?? null, a[2] ?? null) : undefined),
  ],
  // Protocol 2 pickles Python 3 bytes as _codecs.encode(latin-1 text, 'latin1').
  ['_codecs.encode', (a) => latin1Encode(a)],
  ['torch.Size', (a) => (a.length === 0 ? makeTuple([]) : safe(() => makeTuple([...pyIterate(a[0]!, fail)])))],
  ['torch.device', (a) => (typeof a[0] === 'string' ? (typeof a[1] === 'number' ? `${a[0]}:${a[1]}` : a[0]) : undefined)],
]);

/** Elements a constructor would copy from its argument. */
function copyCost(v: PyValue | undefined): number {
  if (Array.isArray(v) || typeof v === 'string' || v instanceof Uint8Array) return v.length;
  if (v instanceof Map || v instanceof Set) return v.size;
  if (v instanceof PyObject) return (v.listItems?.length ?? 0) + (v.dictItems?.size ?? 0);
  return 0;
}

/**
 * A little-endian two's-complement integer of any length (LONG1 / LONG4), in time linear in its length:
 * the bytes become one hexadecimal string that BigInt parses at once (a byte-by-byte shift-and-or loop is
 * quadratic: 26 s for 200 kB).
 */
export function littleEndianSigned(b: Uint8Array): bigint {
  const k = b.length;
  if (k === 0) return 0n;
  const be = Buffer.from(b).reverse();
  let v = BigInt(`0x${be.toString('hex')}`);
  if (be[0]! & 0x80) v -= 1n << BigInt(8 * k);
  return v;
}

/**
 * Python refuses to convert decimal strings of more than 4300 digits to int (sys.int_info.default_max_str_digits,
 * CVE-2020-10735: the conversion is quadratic), so a pickle with a longer INT / LONG literal does not load in
 * PyTorch either; refused here for the same reason.
 */
const MAX_DECIMAL_DIGITS = 4300;
function decimalInt(s: string, err: (what: string) => TorchSslError): bigint {
  const digits = s.replace(/^[-+]/, '').length;
  if (digits > MAX_DECIMAL_DIGITS)
    throw err(`an integer literal of ${digits} digits exceeds Python's limit of ${MAX_DECIMAL_DIGITS} (int_max_str_digits), which torch.load refuses too`);
  return BigInt(s);
}

function fail(): never {
  throw new Error('not iterable');
}

function safe(fn: () => PyValue): PyValue | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

function truthy(v: PyValue): boolean {
  if (v === null || v === false || v === 0 || v === 0n || v === '') return false;
  if (Array.isArray(v) || v instanceof Uint8Array) return v.length > 0;
  if (v instanceof Map || v instanceof Set) return v.size > 0;
  return true;
}

function normInt(b: bigint): number | bigint {
  return b >= -BigInt(Number.MAX_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

function toInt(v: PyValue): PyValue | undefined {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return normInt(v);
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : undefined;
  if (typeof v === 'string' && /^\s*[-+]?\d+\s*$/.test(v)) return normInt(BigInt(v.trim()));
  return undefined;
}

function toFloat(v: PyValue): PyValue | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') {
    const t = v.trim().toLowerCase();
    if (t === 'inf' || t === '+inf' || t === 'infinity') return Infinity;
    if (t === '-inf' || t === '-infinity') return -Infinity;
    if (t === 'nan') return NaN;
    const n = Number(t);
    return t !== '' && !Number.isNaN(n) ? n : undefined;
  }
  return undefined;
}

function toBytes(a: PyValue[]): PyValue | undefined {
  if (a.length === 0) return new Uint8Array(0);
  const v = a[0]!;
  if (v instanceof Uint8Array) return v.slice();
  if (typeof v === 'string') return a.length >= 2 ? latin1Encode(a) : undefined;
  if (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < 256)) {
    return Uint8Array.from(v as number[]);
  }
  return undefined;
}

function latin1Encode(a: PyValue[]): PyValue | undefined {
  const [text, enc] = a;
  if (typeof text !== 'string') return undefined;
  const e = typeof enc === 'string' ? enc.toLowerCase().replace(/[-_]/g, '') : 'utf8';
  if (e === 'latin1' || e === 'iso88591') {
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c > 255) return undefined;
      out[i] = c;
    }
    return out;
  }
  if (e === 'utf8' || e === 'ascii') return new TextEncoder().encode(text);
  return undefined;
}

const utf8 = new TextDecoder('utf-8');
const latin1 = new TextDecoder('latin1');

/** Decodes Python's `repr` escapes of protocol-0 STRING / raw-unicode-escape UNICODE text. */
function unescapePy(s: string): string {
  return s.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[\\'"nrt0])/g, (_m, e: string) => {
    switch (e[0]) {
      case 'x':
      case 'u':
      case 'U':
        return String.fromCodePoint(parseInt(e.slice(1), 16));
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case 't':
        return '\t';
      case '0':
        return '\0';
      default:
        return e;
    }
  });
}

/**
 * The opcodes, by their names in CPython's `Lib/pickle.py` (grouped by the protocol that introduced them).
 * Only those with an entry in `DISPATCH` are executed; the others fail as unknown or unsupported.
 */
const OP = Object.freeze({
  // Protocol 0 and 1
  MARK: 0x28, // (  push the special markobject on the stack
  STOP: 0x2e, // .  every pickle ends with STOP
  POP: 0x30, // 0  discard the topmost stack item
  POP_MARK: 0x31, // 1  discard the stack through the topmost markobject
  DUP: 0x32, // 2  duplicate the top stack item
  FLOAT: 0x46, // F  push a float; decimal string argument
  INT: 0x49, // I  push an integer or bool; decimal string argument
  BININT: 0x4a, // J  push a four-byte signed int
  BININT1: 0x4b, // K  push a one-byte unsigned int
  LONG: 0x4c, // L  push a long; decimal string argument
  BININT2: 0x4d, // M  push a two-byte unsigned int
  NONE: 0x4e, // N  push None
  PERSID: 0x50, // P  push a persistent object; id is taken from the string argument
  BINPERSID: 0x51, // Q  push a persistent object; id is taken from the stack
  REDUCE: 0x52, // R  apply a callable to an argument tuple, both on the stack
  STRING: 0x53, // S  push a string; newline-terminated quoted string argument
  BINSTRING: 0x54, // T  push a string; counted binary string argument
  SHORT_BINSTRING: 0x55, // U  ditto, with a length of less than 256 bytes
  UNICODE: 0x56, // V  push a Unicode string; raw-unicode-escaped argument
  BINUNICODE: 0x58, // X  ditto, counted UTF-8 argument
  APPEND: 0x61, // a  append the stack top to the list below it
  BUILD: 0x62, // b  call __setstate__ or __dict__.update()
  GLOBAL: 0x63, // c  push self.find_class(modname, name); two string arguments
  DICT: 0x64, // d  build a dict from the stack items above the topmost mark
  EMPTY_DICT: 0x7d, // }  push an empty dict
  APPENDS: 0x65, // e  extend the list on the stack by the items above the topmost mark
  GET: 0x67, // g  push an item from the memo; index is a string argument
  BINGET: 0x68, // h  ditto, index is a one-byte argument
  INST: 0x69, // i  build and push a class instance
  LONG_BINGET: 0x6a, // j  push an item from the memo; index is a four-byte argument
  LIST: 0x6c, // l  build a list from the items above the topmost mark
  EMPTY_LIST: 0x5d, // ]  push an empty list
  OBJ: 0x6f, // o  build and push a class instance
  PUT: 0x70, // p  store the stack top in the memo; index is a string argument
  BINPUT: 0x71, // q  ditto, index is a one-byte argument
  LONG_BINPUT: 0x72, // r  ditto, index is a four-byte argument
  SETITEM: 0x73, // s  add a key+value pair to a dict
  TUPLE: 0x74, // t  build a tuple from the items above the topmost mark
  EMPTY_TUPLE: 0x29, // )  push an empty tuple
  SETITEMS: 0x75, // u  modify a dict by adding the key+value pairs above the topmost mark
  BINFLOAT: 0x47, // G  push a float; eight-byte big-endian argument
  // Protocol 2
  PROTO: 0x80, // identify the pickle protocol
  NEWOBJ: 0x81, // build an object by applying cls.__new__ to an argument tuple
  EXT1: 0x82, // push an object from the extension registry; one-byte index
  EXT2: 0x83, // ditto, two-byte index
  EXT4: 0x84, // ditto, four-byte index
  TUPLE1: 0x85, // build a 1-tuple from the stack top
  TUPLE2: 0x86, // build a 2-tuple from the two topmost stack items
  TUPLE3: 0x87, // build a 3-tuple from the three topmost stack items
  NEWTRUE: 0x88, // push True
  NEWFALSE: 0x89, // push False
  LONG1: 0x8a, // push a long from a byte count (< 256) and a little-endian two's-complement body
  LONG4: 0x8b, // push a really big long: a four-byte count
  // Protocol 3 (Python 3.x)
  BINBYTES: 0x42, // B  push bytes; counted binary string argument
  SHORT_BINBYTES: 0x43, // C  ditto, with a length of less than 256 bytes
  // Protocol 4
  SHORT_BINUNICODE: 0x8c, // push a short string; UTF-8 length < 256 bytes
  BINUNICODE8: 0x8d, // push a very long string
  BINBYTES8: 0x8e, // push very long bytes
  EMPTY_SET: 0x8f, // push an empty set on the stack
  ADDITEMS: 0x90, // modify a set by adding the items above the topmost mark
  FROZENSET: 0x91, // build a frozenset from the items above the topmost mark
  NEWOBJ_EX: 0x92, // like NEWOBJ but works with keyword-only arguments
  STACK_GLOBAL: 0x93, // same as GLOBAL but using names on the stack
  MEMOIZE: 0x94, // store the top of the stack in the memo
  FRAME: 0x95, // indicate the beginning of a new frame
  // Protocol 5
  BYTEARRAY8: 0x96, // push a bytearray
  NEXT_BUFFER: 0x97, // push the next out-of-band buffer
  READONLY_BUFFER: 0x98, // make the top of the stack read-only
});

/**
 * The machine's state (pickle.py's `_Unpickler`): the reader over `data`, the stack, the metastack of
 * the stacks saved by each MARK, the memo, the options and limits, and the value STOP produced. The
 * reads, stack and memo operations are bounds-checked; every failure goes through `err`, which names
 * the source, the byte offset and the opcode being run.
 */
class Unpickler {
  readonly source: string;
  readonly maxStack: number;
  readonly maxMemo: number;
  readonly maxWork: number;
  /** Elements the allow-listed constructors have copied so far (bounded by `maxWork`). */
  work = 0;
  readonly view: DataView;
  readonly n: number;
  /** Read position, the offset of the opcode being run, and that opcode. */
  pos: number;
  opPos: number;
  op = 0;
  /** The current stack; MARK saves it on the metastack and starts a fresh one (pickle.py's `self.stack`). */
  stack: StackItem[] = [];
  readonly metastack: StackItem[][] = [];
  readonly memo = new Map<number, PyValue>();
  /** Set by STOP. */
  result: UnpickleResult | null = null;

  constructor(
    readonly data: Uint8Array,
    readonly opts: UnpickleOptions,
  ) {
    this.source = opts.source ?? 'pickle';
    this.maxStack = opts.maxStack ?? 50_000_000;
    this.maxMemo = opts.maxMemo ?? 50_000_000;
    this.maxWork = opts.maxWork ?? 4 * data.length + 1_000_000;
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.n = data.length;
    this.pos = opts.offset ?? 0;
    this.opPos = this.pos;
  }

  /** Fetches and runs opcodes until STOP, through the dispatch table. */
  run(): UnpickleResult {
    const { data, n } = this;
    try {
      for (;;) {
        this.opPos = this.pos;
        if (this.pos >= n) throw new PickleTruncatedError(`${this.source}: pickle data ends at byte ${n} without a STOP opcode`);
        const op = (this.op = data[this.pos++]!);
        const load = DISPATCH[op];
        if (load === undefined) throw this.err('unknown opcode');
        load(this);
        if (this.result !== null) return this.result;
      }
    } catch (e) {
      if (e instanceof TorchSslError) throw e;
      // A safety net: whatever a malformed stream provokes surfaces as a format error.
      throw this.err((e as Error)?.message ?? String(e));
    }
  }

  err(what: string): TorchSslError {
    return new TorchSslError(
      'ERR_CHECKPOINT_FORMAT',
      `${this.source}: corrupt pickle at byte ${this.opPos} (opcode 0x${this.op.toString(16).padStart(2, '0')}): ${what}`,
    );
  }

  // ---- the reader

  need(k: number): void {
    if (k < 0 || this.pos + k > this.n) {
      throw new PickleTruncatedError(`${this.source}: pickle data ends early at byte ${this.n} (needed ${k} more bytes at ${this.pos})`);
    }
  }
  u8(): number {
    this.need(1);
    return this.data[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  /** An eight-byte length, which cannot exceed the data. */
  u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(this.n)) throw this.err(`length ${v} exceeds the data`);
    return Number(v);
  }
  f64be(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, false);
    this.pos += 8;
    return v;
  }
  /** `k` bytes, as a view into the data (copy it before it escapes as a value). */
  bytes(k: number): Uint8Array {
    this.need(k);
    const b = this.data.subarray(this.pos, this.pos + k);
    this.pos += k;
    return b;
  }
  /** A protocol-0 text argument: latin-1 up to the newline, without a trailing CR. */
  line(): string {
    const nl = this.data.indexOf(0x0a, this.pos);
    if (nl < 0) throw new PickleTruncatedError(`${this.source}: pickle data ends inside a text line at byte ${this.pos}`);
    const s = latin1.decode(this.data.subarray(this.pos, nl));
    this.pos = nl + 1;
    return s.endsWith('\r') ? s.slice(0, -1) : s;
  }

  // ---- the stack and the memo

  push(v: PyValue): void {
    if (this.stack.length >= this.maxStack) throw this.err(`stack deeper than ${this.maxStack}`);
    this.stack.push(v);
  }
  pop(): PyValue {
    if (this.stack.length === 0) throw this.err('stack underflow');
    const v = this.stack.pop()!;
    if (v === MARK_OBJ) throw this.err('unexpected MARK on the stack');
    return v;
  }
  top(): PyValue {
    const v = this.stack[this.stack.length - 1];
    if (v === undefined || v === MARK_OBJ) throw this.err(this.stack.length === 0 ? 'stack underflow' : 'unexpected MARK on the stack');
    return v;
  }
  /** The items above the topmost MARK, restoring the stack below it (pickle.py's `pop_mark`). */
  popMark(): PyValue[] {
    const items = this.stack;
    const prev = this.metastack.pop();
    if (prev === undefined) throw this.err('no MARK to pop to');
    this.stack = prev;
    for (const it of items) if (it === MARK_OBJ) throw this.err('nested MARK inside a MARK group');
    return items as PyValue[];
  }
  memoPut(idx: number, v: PyValue): void {
    if (!this.memo.has(idx) && this.memo.size >= this.maxMemo) throw this.err(`memo larger than ${this.maxMemo}`);
    this.memo.set(idx, v);
  }
  memoGet(idx: number): PyValue {
    const v = this.memo.get(idx);
    if (v === undefined) throw this.err(`memo key ${idx} was never stored`);
    return v;
  }

  // ---- globals, calls and container updates

  /** pickle.py's `find_class`, except that the result is an inert name, never an imported object. */
  makeGlobal(module: string, name: string): PyGlobal {
    if (module.length === 0 || name.length === 0 || module.length > 1024 || name.length > 1024) throw this.err('bad global name');
    return new PyGlobal(`${MODULE_ALIASES[module] ?? module}.${name}`);
  }
  asArgs(a: PyValue): PyValue[] {
    if (!Array.isArray(a)) throw this.err('call arguments are not a tuple');
    return a;
  }
  /** The only place a pickle can ask for a call: allow-listed pure functions, otherwise an inert record. */
  call(fn: PyValue, args: PyValue[], kwargs: PyDict | null): PyValue {
    if (fn instanceof PyGlobal) {
      const name = fn.$global;
      const extra = this.opts.callables?.get(name);
      if (extra) return extra(args, kwargs);
      if (name === 'copyreg._reconstructor' && args[0] instanceof PyGlobal) {
        // object.__new__(cls) for a plain class: a record of cls; state follows via BUILD.
        return new PyObject(args[0].$global, args.length > 2 && args[2] !== null ? [args[2]!] : []);
      }
      const builtin = kwargs === null || kwargs.size === 0 ? BUILTIN_CALLABLES.get(name) : undefined;
      if (builtin) {
        this.work += 1 + copyCost(args[0]);
        if (this.work > this.maxWork) throw this.err(`constructors copied more than ${this.maxWork} elements (a decompression-bomb pickle?)`);
      }
      const made = builtin?.(args);
      if (made !== undefined) return made;
      const rec = new PyObject(name, args);
      if (kwargs && kwargs.size > 0) rec.kwargs = kwargs;
      return rec;
    }
    if (fn instanceof PyObject) {
      const rec = new PyObject(`${fn.$class}()`, args);
      if (kwargs && kwargs.size > 0) rec.kwargs = kwargs;
      return rec;
    }
    throw this.err(`call of a non-callable ${describe(fn)}`);
  }
  setItems(target: PyValue, items: PyValue[]): void {
    if (items.length % 2 !== 0) throw this.err('odd number of SETITEMS values');
    let m: PyDict;
    if (target instanceof Map) m = target;
    else if (target instanceof PyObject) m = target.dictItems ??= new Map();
    else throw this.err(`SETITEM on a ${describe(target)}`);
    for (let i = 0; i < items.length; i += 2) m.set(items[i]!, items[i + 1]!);
  }
  appendItems(target: PyValue, items: PyValue[]): void {
    if (Array.isArray(target) && !isTuple(target)) {
      for (const it of items) target.push(it);
    } else if (target instanceof PyObject) {
      const l = (target.listItems ??= []);
      for (const it of items) l.push(it);
    } else throw this.err(`APPEND on a ${describe(target)}`);
  }
  persistentLoad(pid: PyValue): PyValue {
    if (!this.opts.persistentLoad) throw this.err('persistent id without a persistent_load');
    return this.opts.persistentLoad(pid);
  }
}

/** Runs one opcode; its byte has been read, its arguments follow at `m.pos`. */
type Handler = (m: Unpickler) => void;

// ---- framing and control (pickle.py's load_proto, load_frame, load_stop, load_mark, load_pop, load_pop_mark, load_dup)

function loadProto(m: Unpickler): void {
  if (m.u8() > 5) throw m.err('pickle protocol above 5');
}
/** FRAME: framing is advisory; the opcodes follow inline. */
function loadFrame(m: Unpickler): void {
  m.u64();
}
function loadStop(m: Unpickler): void {
  const value = m.pop();
  m.result = { value, end: m.pos };
}
function loadMark(m: Unpickler): void {
  if (m.metastack.length >= m.maxStack) throw m.err(`MARK nesting deeper than ${m.maxStack}`);
  m.metastack.push(m.stack);
  m.stack = [];
}
function loadPop(m: Unpickler): void {
  if (m.stack.length === 0) throw m.err('stack underflow');
  if (m.stack[m.stack.length - 1] === MARK_OBJ) throw m.err('POP of a MARK');
  m.stack.pop();
}
function loadPopMark(m: Unpickler): void {
  m.popMark();
}
function loadDup(m: Unpickler): void {
  m.push(m.top());
}

// ---- constants and numbers (NONE, NEWTRUE, NEWFALSE, BININT*, LONG1/LONG4, INT, LONG, FLOAT, BINFLOAT)

function loadNone(m: Unpickler): void {
  m.push(null);
}
function loadTrue(m: Unpickler): void {
  m.push(true);
}
function loadFalse(m: Unpickler): void {
  m.push(false);
}
function loadBinint(m: Unpickler): void {
  m.push(m.i32());
}
function loadBinint1(m: Unpickler): void {
  m.push(m.u8());
}
function loadBinint2(m: Unpickler): void {
  m.push(m.u16());
}
/** LONG1 (one-byte length) and LONG4 (four-byte length). */
function loadLongN(m: Unpickler): void {
  const k = m.op === OP.LONG1 ? m.u8() : m.u32();
  m.push(normInt(littleEndianSigned(m.bytes(k))));
}
/** INT (text); `I00` and `I01` are pickle.py's FALSE and TRUE. */
function loadInt(m: Unpickler): void {
  const s = m.line();
  if (s === '00') m.push(false);
  else if (s === '01') m.push(true);
  else if (/^[-+]?\d+$/.test(s)) m.push(normInt(decimalInt(s, (what) => m.err(what))));
  else throw m.err(`bad INT literal ${JSON.stringify(s.slice(0, 40))}`);
}
/** LONG (text, with an optional trailing L). */
function loadLong(m: Unpickler): void {
  const s = m.line().replace(/L$/, '');
  if (!/^[-+]?\d+$/.test(s)) throw m.err('bad LONG literal');
  m.push(normInt(decimalInt(s, (what) => m.err(what))));
}
/** FLOAT (text). */
function loadFloat(m: Unpickler): void {
  const v = toFloat(m.line());
  if (typeof v !== 'number') throw m.err('bad FLOAT literal');
  m.push(v);
}
/** BINFLOAT (big-endian double). */
function loadBinfloat(m: Unpickler): void {
  m.push(m.f64be());
}

// ---- strings and bytes

function loadBinunicode(m: Unpickler): void {
  m.push(utf8.decode(m.bytes(m.u32())));
}
function loadShortBinunicode(m: Unpickler): void {
  m.push(utf8.decode(m.bytes(m.u8())));
}
function loadBinunicode8(m: Unpickler): void {
  m.push(utf8.decode(m.bytes(m.u64())));
}
/** UNICODE (raw-unicode-escape text). */
function loadUnicode(m: Unpickler): void {
  m.push(unescapePy(m.line()));
}
/** SHORT_BINSTRING (Python 2 str: decoded as torch.load does, utf-8). */
function loadShortBinstring(m: Unpickler): void {
  m.push(utf8.decode(m.bytes(m.u8())));
}
/** BINSTRING (Python 2 str, four-byte signed length). */
function loadBinstring(m: Unpickler): void {
  const k = m.i32();
  if (k < 0) throw m.err('negative BINSTRING length');
  m.push(utf8.decode(m.bytes(k)));
}
/** STRING (a quoted repr). */
function loadString(m: Unpickler): void {
  const s = m.line();
  const q = s[0];
  if (s.length < 2 || (q !== "'" && q !== '"') || s[s.length - 1] !== q) throw m.err('bad STRING literal');
  m.push(unescapePy(s.slice(1, -1)));
}
function loadBinbytes(m: Unpickler): void {
  m.push(m.bytes(m.u32()).slice());
}
function loadShortBinbytes(m: Unpickler): void {
  m.push(m.bytes(m.u8()).slice());
}
/** BINBYTES8 and BYTEARRAY8 (both read as a Uint8Array). */
function loadBytes8(m: Unpickler): void {
  m.push(m.bytes(m.u64()).slice());
}
function loadNextBuffer(m: Unpickler): void {
  throw m.err('out-of-band buffers (pickle protocol 5 NEXT_BUFFER) are not supported');
}
/** READONLY_BUFFER: values are not made read-only here; only checks there is a value. */
function loadReadonlyBuffer(m: Unpickler): void {
  m.top();
}

// ---- containers

function loadEmptyTuple(m: Unpickler): void {
  m.push(makeTuple([]));
}
function loadTuple(m: Unpickler): void {
  m.push(makeTuple(m.popMark()));
}
function loadTuple1(m: Unpickler): void {
  m.push(makeTuple([m.pop()]));
}
function loadTuple2(m: Unpickler): void {
  const b = m.pop();
  const a = m.pop();
  m.push(makeTuple([a, b]));
}
function loadTuple3(m: Unpickler): void {
  const c = m.pop();
  const b = m.pop();
  const a = m.pop();
  m.push(makeTuple([a, b, c]));
}
function loadEmptyList(m: Unpickler): void {
  m.push([]);
}
function loadList(m: Unpickler): void {
  m.push(m.popMark());
}
function loadEmptyDictionary(m: Unpickler): void {
  m.push(new Map());
}
function loadDict(m: Unpickler): void {
  const items = m.popMark();
  const d: PyDict = new Map();
  m.push(d);
  m.setItems(d, items);
}
function loadEmptySet(m: Unpickler): void {
  m.push(new Set());
}
function loadFrozenset(m: Unpickler): void {
  m.push(new Set(m.popMark()));
}
function loadAppend(m: Unpickler): void {
  const v = m.pop();
  m.appendItems(m.top(), [v]);
}
function loadAppends(m: Unpickler): void {
  const items = m.popMark();
  m.appendItems(m.top(), items);
}
function loadSetitem(m: Unpickler): void {
  const v = m.pop();
  const k = m.pop();
  m.setItems(m.top(), [k, v]);
}
function loadSetitems(m: Unpickler): void {
  const items = m.popMark();
  m.setItems(m.top(), items);
}
function loadAdditems(m: Unpickler): void {
  const items = m.popMark();
  const t = m.top();
  if (t instanceof Set) for (const it of items) t.add(it);
  else if (t instanceof PyObject) m.appendItems(t, items);
  else throw m.err(`ADDITEMS on a ${describe(t)}`);
}

// ---- the memo

function loadPut(m: Unpickler): void {
  const s = m.line();
  if (!/^\d+$/.test(s)) throw m.err('bad PUT index');
  m.memoPut(Number(s), m.top());
}
function loadBinput(m: Unpickler): void {
  m.memoPut(m.u8(), m.top());
}
function loadLongBinput(m: Unpickler): void {
  m.memoPut(m.u32(), m.top());
}
function loadMemoize(m: Unpickler): void {
  m.memoPut(m.memo.size, m.top());
}
function loadGet(m: Unpickler): void {
  const s = m.line();
  if (!/^\d+$/.test(s)) throw m.err('bad GET index');
  m.push(m.memoGet(Number(s)));
}
function loadBinget(m: Unpickler): void {
  m.push(m.memoGet(m.u8()));
}
function loadLongBinget(m: Unpickler): void {
  m.push(m.memoGet(m.u32()));
}

// ---- globals, calls, objects

function loadGlobal(m: Unpickler): void {
  const module = m.line();
  const name = m.line();
  m.push(m.makeGlobal(module, name));
}
function loadStackGlobal(m: Unpickler): void {
  const name = m.pop();
  const module = m.pop();
  if (typeof module !== 'string' || typeof name !== 'string') throw m.err('STACK_GLOBAL needs two strings');
  m.push(m.makeGlobal(module, name));
}
/** EXT1, EXT2, EXT4: the copyreg extension registry is not consulted. */
function loadExt(m: Unpickler): void {
  throw m.err('extension-registry opcodes (EXT1/2/4) are not supported');
}
function loadReduce(m: Unpickler): void {
  const args = m.asArgs(m.pop());
  const fn = m.pop();
  m.push(m.call(fn, [...args], null));
}
function loadNewobj(m: Unpickler): void {
  const args = m.asArgs(m.pop());
  const cls = m.pop();
  m.push(m.call(cls, [...args], null));
}
function loadNewobjEx(m: Unpickler): void {
  const kwargs = m.pop();
  const args = m.asArgs(m.pop());
  const cls = m.pop();
  if (!(kwargs instanceof Map)) throw m.err('NEWOBJ_EX keyword arguments are not a dict');
  m.push(m.call(cls, [...args], kwargs));
}
function loadObj(m: Unpickler): void {
  const items = m.popMark();
  if (items.length === 0) throw m.err('OBJ without a class');
  m.push(m.call(items[0]!, items.slice(1), null));
}
function loadInst(m: Unpickler): void {
  const module = m.line();
  const name = m.line();
  m.push(m.call(m.makeGlobal(module, name), m.popMark(), null));
}
/** BUILD: the state is recorded on the object, never passed to a `__setstate__`. */
function loadBuild(m: Unpickler): void {
  const state = m.pop();
  const inst = m.top();
  if (inst instanceof PyObject) {
    if (inst.state instanceof Map && state instanceof Map) for (const [k, v] of state) inst.state.set(k, v);
    else inst.state = state;
  } else if (inst !== null && typeof inst === 'object') {
    // A dict subclass's __dict__ (an OrderedDict's _metadata), a Parameter's extra state, ...
    setPyState(inst, state);
  } else {
    throw m.err(`BUILD on a ${describe(inst)}`);
  }
}
function loadPersid(m: Unpickler): void {
  const pid = m.line();
  m.push(m.persistentLoad(pid));
}
function loadBinpersid(m: Unpickler): void {
  const pid = m.pop();
  m.push(m.persistentLoad(pid));
}

/**
 * Handlers by opcode byte (pickle.py's `_Unpickler.dispatch`). An opcode without an entry (anything not
 * in pickle.py's protocols 0–5) is an 'unknown opcode'; EXT1/2/4 and NEXT_BUFFER have entries that refuse.
 */
const DISPATCH: readonly (Handler | undefined)[] = dispatchTable([
  [OP.PROTO, loadProto],
  [OP.FRAME, loadFrame],
  [OP.STOP, loadStop],
  [OP.MARK, loadMark],
  [OP.POP, loadPop],
  [OP.POP_MARK, loadPopMark],
  [OP.DUP, loadDup],
  [OP.NONE, loadNone],
  [OP.NEWTRUE, loadTrue],
  [OP.NEWFALSE, loadFalse],
  [OP.BININT, loadBinint],
  [OP.BININT1, loadBinint1],
  [OP.BININT2, loadBinint2],
  [OP.LONG1, loadLongN],
  [OP.LONG4, loadLongN],
  [OP.INT, loadInt],
  [OP.LONG, loadLong],
  [OP.FLOAT, loadFloat],
  [OP.BINFLOAT, loadBinfloat],
  [OP.BINUNICODE, loadBinunicode],
  [OP.SHORT_BINUNICODE, loadShortBinunicode],
  [OP.BINUNICODE8, loadBinunicode8],
  [OP.UNICODE, loadUnicode],
  [OP.SHORT_BINSTRING, loadShortBinstring],
  [OP.BINSTRING, loadBinstring],
  [OP.STRING, loadString],
  [OP.BINBYTES, loadBinbytes],
  [OP.SHORT_BINBYTES, loadShortBinbytes],
  [OP.BINBYTES8, loadBytes8],
  [OP.BYTEARRAY8, loadBytes8],
  [OP.NEXT_BUFFER, loadNextBuffer],
  [OP.READONLY_BUFFER, loadReadonlyBuffer],
  [OP.EMPTY_TUPLE, loadEmptyTuple],
  [OP.TUPLE, loadTuple],
  [OP.TUPLE1, loadTuple1],
  [OP.TUPLE2, loadTuple2],
  [OP.TUPLE3, loadTuple3],
  [OP.EMPTY_LIST, loadEmptyList],
  [OP.LIST, loadList],
  [OP.EMPTY_DICT, loadEmptyDictionary],
  [OP.DICT, loadDict],
  [OP.EMPTY_SET, loadEmptySet],
  [OP.FROZENSET, loadFrozenset],
  [OP.APPEND, loadAppend],
  [OP.APPENDS, loadAppends],
  [OP.SETITEM, loadSetitem],
  [OP.SETITEMS, loadSetitems],
  [OP.ADDITEMS, loadAdditems],
  [OP.PUT, loadPut],
  [OP.BINPUT, loadBinput],
  [OP.LONG_BINPUT, loadLongBinput],
  [OP.MEMOIZE, loadMemoize],
  [OP.GET, loadGet],
  [OP.BINGET, loadBinget],
  [OP.LONG_BINGET, loadLongBinget],
  [OP.GLOBAL, loadGlobal],
  [OP.STACK_GLOBAL, loadStackGlobal],
  [OP.EXT1, loadExt],
  [OP.EXT2, loadExt],
  [OP.EXT4, loadExt],
  [OP.REDUCE, loadReduce],
  [OP.NEWOBJ, loadNewobj],
  [OP.NEWOBJ_EX, loadNewobjEx],
  [OP.OBJ, loadObj],
  [OP.INST, loadInst],
  [OP.BUILD, loadBuild],
  [OP.PERSID, loadPersid],
  [OP.BINPERSID, loadBinpersid],
]);

/** A frozen 256-entry table from (opcode, handler) pairs; an opcode listed twice is a programming error. */
function dispatchTable(entries: readonly (readonly [number, Handler])[]): readonly (Handler | undefined)[] {
  const table = new Array<Handler | undefined>(256).fill(undefined);
  for (const [op, load] of entries) {
    if (table[op] !== undefined) throw new Error(`opcode 0x${op.toString(16)} has two handlers`);
    table[op] = load;
  }
  return Object.freeze(table);
}

/** Runs the pickle in `data` (from `opts.offset`) and returns its value and where it ended. */
export function unpickle(data: Uint8Array, opts: UnpickleOptions = {}): UnpickleResult {
  return new Unpickler(data, opts).run();
}

export function describe(v: PyValue | undefined): string {
  if (v === null) return 'None';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return isTuple(v) ? 'tuple' : 'list';
  if (v instanceof Map) return 'dict';
  if (v instanceof Set) return 'set';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PyObject) return `${v.$class} object`;
  if (v instanceof PyGlobal) return `global ${v.$global}`;
  if (typeof v === 'object') return v.constructor.name;
  return typeof v;
}
