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
 * The machine is a loop over opcodes with explicit stacks (no recursion), so nesting depth is bounded
 * only by memory; the stack, the memo and every read are bounds-checked, and anything malformed throws
 * ERR_CHECKPOINT_FORMAT naming the source, the byte offset and the opcode.
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
  ['builtins.str', (a) => (a.length === 0 ? '' : typeof a[0] === 'string' ? a[0] : typeof a[0] === 'number' || typeof a[0] === 'bigint' ? String(a[0]) : undefined)],
  ['builtins.bytes', (a) => toBytes(a)],
  ['builtins.bytearray', (a) => toBytes(a)],
  ['builtins.slice', (a) => (a.length === 1 ? new PySlice(null, a[0]!, null) : a.length <= 3 ? new PySlice(a[0] ?? null, a[1] ?? null, a[2] ?? null) : undefined)],
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
  if (digits > MAX_DECIMAL_DIGITS) throw err(`an integer literal of ${digits} digits exceeds Python's limit of ${MAX_DECIMAL_DIGITS} (int_max_str_digits), which torch.load refuses too`);
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

/** Runs the pickle in `data` (from `opts.offset`) and returns its value and where it ended. */
export function unpickle(data: Uint8Array, opts: UnpickleOptions = {}): UnpickleResult {
  const source = opts.source ?? 'pickle';
  const maxStack = opts.maxStack ?? 50_000_000;
  const maxMemo = opts.maxMemo ?? 50_000_000;
  const maxWork = opts.maxWork ?? 4 * data.length + 1_000_000;
  let work = 0;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = data.length;
  let pos = opts.offset ?? 0;
  let opPos = pos;
  let op = 0;

  const err = (what: string): TorchSslError =>
    new TorchSslError('ERR_CHECKPOINT_FORMAT', `${source}: corrupt pickle at byte ${opPos} (opcode 0x${op.toString(16).padStart(2, '0')}): ${what}`);
  const need = (k: number): void => {
    if (k < 0 || pos + k > n) throw new PickleTruncatedError(`${source}: pickle data ends early at byte ${n} (needed ${k} more bytes at ${pos})`);
  };
  const u8 = (): number => {
    need(1);
    return data[pos++]!;
  };
  const u16 = (): number => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = (): number => {
    need(4);
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(n)) throw err(`length ${v} exceeds the data`);
    return Number(v);
  };
  const bytes = (k: number): Uint8Array => {
    need(k);
    const b = data.subarray(pos, pos + k);
    pos += k;
    return b;
  };
  const line = (): string => {
    const nl = data.indexOf(0x0a, pos);
    if (nl < 0) throw new PickleTruncatedError(`${source}: pickle data ends inside a text line at byte ${pos}`);
    const s = latin1.decode(data.subarray(pos, nl));
    pos = nl + 1;
    return s.endsWith('\r') ? s.slice(0, -1) : s;
  };

  let stack: StackItem[] = [];
  const metastack: StackItem[][] = [];
  const memo = new Map<number, PyValue>();

  const push = (v: PyValue): void => {
    if (stack.length >= maxStack) throw err(`stack deeper than ${maxStack}`);
    stack.push(v);
  };
  const pop = (): PyValue => {
    if (stack.length === 0) throw err('stack underflow');
    const v = stack.pop()!;
    if (v === MARK_OBJ) throw err('unexpected MARK on the stack');
    return v;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK_OBJ) throw err(stack.length === 0 ? 'stack underflow' : 'unexpected MARK on the stack');
    return v;
  };
  const popMark = (): PyValue[] => {
    const items = stack;
    const prev = metastack.pop();
    if (prev === undefined) throw err('no MARK to pop to');
    stack = prev;
    for (const it of items) if (it === MARK_OBJ) throw err('nested MARK inside a MARK group');
    return items as PyValue[];
  };
  const memoPut = (idx: number, v: PyValue): void => {
    if (!memo.has(idx) && memo.size >= maxMemo) throw err(`memo larger than ${maxMemo}`);
    memo.set(idx, v);
  };
  const memoGet = (idx: number): PyValue => {
    const v = memo.get(idx);
    if (v === undefined) throw err(`memo key ${idx} was never stored`);
    return v;
  };
  const makeGlobal = (module: string, name: string): PyGlobal => {
    if (module.length === 0 || name.length === 0 || module.length > 1024 || name.length > 1024) throw err('bad global name');
    return new PyGlobal(`${MODULE_ALIASES[module] ?? module}.${name}`);
  };
  const asArgs = (a: PyValue): PyValue[] => {
    if (!Array.isArray(a)) throw err('call arguments are not a tuple');
    return a;
  };
  /** The only place a pickle can ask for a call: allow-listed pure functions, otherwise an inert record. */
  const call = (fn: PyValue, args: PyValue[], kwargs: PyDict | null): PyValue => {
    if (fn instanceof PyGlobal) {
      const name = fn.$global;
      const extra = opts.callables?.get(name);
      if (extra) return extra(args, kwargs);
      if (name === 'copyreg._reconstructor' && args[0] instanceof PyGlobal) {
        // object.__new__(cls) for a plain class: a record of cls; state follows via BUILD.
        const rec = new PyObject(args[0].$global, args.length > 2 && args[2] !== null ? [args[2]!] : []);
        return rec;
      }
      const builtin = kwargs === null || kwargs.size === 0 ? BUILTIN_CALLABLES.get(name) : undefined;
      if (builtin) {
        work += 1 + copyCost(args[0]);
        if (work > maxWork) throw err(`constructors copied more than ${maxWork} elements (a decompression-bomb pickle?)`);
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
    throw err(`call of a non-callable ${describe(fn)}`);
  };
  const setItems = (target: PyValue, items: PyValue[]): void => {
    if (items.length % 2 !== 0) throw err('odd number of SETITEMS values');
    let m: PyDict;
    if (target instanceof Map) m = target;
    else if (target instanceof PyObject) m = target.dictItems ??= new Map();
    else throw err(`SETITEM on a ${describe(target)}`);
    for (let i = 0; i < items.length; i += 2) m.set(items[i]!, items[i + 1]!);
  };
  const appendItems = (target: PyValue, items: PyValue[]): void => {
    if (Array.isArray(target) && !isTuple(target)) {
      for (const it of items) target.push(it);
    } else if (target instanceof PyObject) {
      const l = (target.listItems ??= []);
      for (const it of items) l.push(it);
    } else throw err(`APPEND on a ${describe(target)}`);
  };

  try {
    for (;;) {
      opPos = pos;
      if (pos >= n) throw new PickleTruncatedError(`${source}: pickle data ends at byte ${n} without a STOP opcode`);
      op = data[pos++]!;
      switch (op) {
        case 0x80: // PROTO
          if (u8() > 5) throw err('pickle protocol above 5');
          break;
        case 0x95: // FRAME: framing is advisory; the opcodes follow inline
          u64();
          break;
        case 0x2e: {
          // STOP
          const v = pop();
          return { value: v, end: pos };
        }
        case 0x28: // MARK
          if (metastack.length >= maxStack) throw err(`MARK nesting deeper than ${maxStack}`);
          metastack.push(stack);
          stack = [];
          break;
        case 0x30: // POP
          if (stack.length === 0) throw err('stack underflow');
          if (stack[stack.length - 1] === MARK_OBJ) throw err('POP of a MARK');
          stack.pop();
          break;
        case 0x31: // POP_MARK
          popMark();
          break;
        case 0x32: // DUP
          push(top());
          break;
        // ---- constants
        case 0x4e: // NONE
          push(null);
          break;
        case 0x88: // NEWTRUE
          push(true);
          break;
        case 0x89: // NEWFALSE
          push(false);
          break;
        case 0x4a: // BININT
          push(i32());
          break;
        case 0x4b: // BININT1
          push(u8());
          break;
        case 0x4d: // BININT2
          push(u16());
          break;
        case 0x8a: // LONG1
        case 0x8b: {
          // LONG4
          const k = op === 0x8a ? u8() : u32();
          push(normInt(littleEndianSigned(bytes(k))));
          break;
        }
        case 0x49: {
          // INT (text)
          const s = line();
          if (s === '00') push(false);
          else if (s === '01') push(true);
          else if (/^[-+]?\d+$/.test(s)) push(normInt(decimalInt(s, err)));
          else throw err(`bad INT literal ${JSON.stringify(s.slice(0, 40))}`);
          break;
        }
        case 0x4c: {
          // LONG (text)
          const s = line().replace(/L$/, '');
          if (!/^[-+]?\d+$/.test(s)) throw err('bad LONG literal');
          push(normInt(decimalInt(s, err)));
          break;
        }
        case 0x46: {
          // FLOAT (text)
          const v = toFloat(line());
          if (typeof v !== 'number') throw err('bad FLOAT literal');
          push(v);
          break;
        }
        case 0x47: // BINFLOAT (big-endian double)
          need(8);
          push(view.getFloat64(pos, false));
          pos += 8;
          break;
        // ---- strings and bytes
        case 0x58: // BINUNICODE
          push(utf8.decode(bytes(u32())));
          break;
        case 0x8c: // SHORT_BINUNICODE
          push(utf8.decode(bytes(u8())));
          break;
        case 0x8d: // BINUNICODE8
          push(utf8.decode(bytes(u64())));
          break;
        case 0x56: // UNICODE (raw-unicode-escape text)
          push(unescapePy(line()));
          break;
        case 0x55: // SHORT_BINSTRING (Python 2 str: decoded as torch.load does, utf-8)
          push(utf8.decode(bytes(u8())));
          break;
        case 0x54: {
          // BINSTRING
          const k = i32();
          if (k < 0) throw err('negative BINSTRING length');
          push(utf8.decode(bytes(k)));
          break;
        }
        case 0x53: {
          // STRING (quoted repr)
          const s = line();
          const q = s[0];
          if (s.length < 2 || (q !== "'" && q !== '"') || s[s.length - 1] !== q) throw err('bad STRING literal');
          push(unescapePy(s.slice(1, -1)));
          break;
        }
        case 0x42: // BINBYTES
          push(bytes(u32()).slice());
          break;
        case 0x43: // SHORT_BINBYTES
          push(bytes(u8()).slice());
          break;
        case 0x8e: // BINBYTES8
          push(bytes(u64()).slice());
          break;
        case 0x96: // BYTEARRAY8
          push(bytes(u64()).slice());
          break;
        case 0x97: // NEXT_BUFFER
          throw err('out-of-band buffers (pickle protocol 5 NEXT_BUFFER) are not supported');
        case 0x98: // READONLY_BUFFER
          top();
          break;
        // ---- containers
        case 0x29: // EMPTY_TUPLE
          push(makeTuple([]));
          break;
        case 0x74: // TUPLE
          push(makeTuple(popMark()));
          break;
        case 0x85: // TUPLE1
          push(makeTuple([pop()]));
          break;
        case 0x86: {
          // TUPLE2
          const b = pop();
          const a = pop();
          push(makeTuple([a, b]));
          break;
        }
        case 0x87: {
          // TUPLE3
          const c = pop();
          const b = pop();
          const a = pop();
          push(makeTuple([a, b, c]));
          break;
        }
        case 0x5d: // EMPTY_LIST
          push([]);
          break;
        case 0x6c: // LIST
          push(popMark());
          break;
        case 0x7d: // EMPTY_DICT
          push(new Map());
          break;
        case 0x64: {
          // DICT
          const items = popMark();
          const m: PyDict = new Map();
          push(m);
          setItems(m, items);
          break;
        }
        case 0x8f: // EMPTY_SET
          push(new Set());
          break;
        case 0x91: // FROZENSET
          push(new Set(popMark()));
          break;
        case 0x61: {
          // APPEND
          const v = pop();
          appendItems(top(), [v]);
          break;
        }
        case 0x65: {
          // APPENDS
          const items = popMark();
          appendItems(top(), items);
          break;
        }
        case 0x73: {
          // SETITEM
          const v = pop();
          const k = pop();
          setItems(top(), [k, v]);
          break;
        }
        case 0x75: {
          // SETITEMS
          const items = popMark();
          setItems(top(), items);
          break;
        }
        case 0x90: {
          // ADDITEMS
          const items = popMark();
          const t = top();
          if (t instanceof Set) for (const it of items) t.add(it);
          else if (t instanceof PyObject) appendItems(t, items);
          else throw err(`ADDITEMS on a ${describe(t)}`);
          break;
        }
        // ---- memo
        case 0x70: {
          // PUT
          const s = line();
          if (!/^\d+$/.test(s)) throw err('bad PUT index');
          memoPut(Number(s), top());
          break;
        }
        case 0x71: // BINPUT
          memoPut(u8(), top());
          break;
        case 0x72: // LONG_BINPUT
          memoPut(u32(), top());
          break;
        case 0x94: // MEMOIZE
          memoPut(memo.size, top());
          break;
        case 0x67: {
          // GET
          const s = line();
          if (!/^\d+$/.test(s)) throw err('bad GET index');
          push(memoGet(Number(s)));
          break;
        }
        case 0x68: // BINGET
          push(memoGet(u8()));
          break;
        case 0x6a: // LONG_BINGET
          push(memoGet(u32()));
          break;
        // ---- globals, calls, objects
        case 0x63: {
          // GLOBAL
          const module = line();
          const name = line();
          push(makeGlobal(module, name));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = pop();
          const module = pop();
          if (typeof module !== 'string' || typeof name !== 'string') throw err('STACK_GLOBAL needs two strings');
          push(makeGlobal(module, name));
          break;
        }
        case 0x82:
        case 0x83:
        case 0x84:
          throw err('extension-registry opcodes (EXT1/2/4) are not supported');
        case 0x52: {
          // REDUCE
          const args = asArgs(pop());
          const fn = pop();
          push(call(fn, [...args], null));
          break;
        }
        case 0x81: {
          // NEWOBJ
          const args = asArgs(pop());
          const cls = pop();
          push(call(cls, [...args], null));
          break;
        }
        case 0x92: {
          // NEWOBJ_EX
          const kwargs = pop();
          const args = asArgs(pop());
          const cls = pop();
          if (!(kwargs instanceof Map)) throw err('NEWOBJ_EX keyword arguments are not a dict');
          push(call(cls, [...args], kwargs));
          break;
        }
        case 0x6f: {
          // OBJ
          const items = popMark();
          if (items.length === 0) throw err('OBJ without a class');
          push(call(items[0]!, items.slice(1), null));
          break;
        }
        case 0x69: {
          // INST
          const module = line();
          const name = line();
          push(call(makeGlobal(module, name), popMark(), null));
          break;
        }
        case 0x62: {
          // BUILD
          const state = pop();
          const inst = top();
          if (inst instanceof PyObject) {
            if (inst.state instanceof Map && state instanceof Map) for (const [k, v] of state) inst.state.set(k, v);
            else inst.state = state;
          } else if (inst !== null && typeof inst === 'object') {
            // A dict subclass's __dict__ (an OrderedDict's _metadata), a Parameter's extra state, ...
            setPyState(inst, state);
          } else {
            throw err(`BUILD on a ${describe(inst)}`);
          }
          break;
        }
        case 0x50: {
          // PERSID
          const pid = line();
          if (!opts.persistentLoad) throw err('persistent id without a persistent_load');
          push(opts.persistentLoad(pid));
          break;
        }
        case 0x51: {
          // BINPERSID
          const pid = pop();
          if (!opts.persistentLoad) throw err('persistent id without a persistent_load');
          push(opts.persistentLoad(pid));
          break;
        }
        default:
          throw err('unknown opcode');
      }
    }
  } catch (e) {
    if (e instanceof TorchSslError) throw e;
    // A safety net: whatever a malformed stream provokes surfaces as a format error.
    throw err((e as Error)?.message ?? String(e));
  }
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
