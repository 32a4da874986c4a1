/**
 * Every error a user can cause is a `TorchSslError` with a stable `code`.
 * Codes are part of the public contract: match on `err.code`, never on the message.
 */
export type ErrorCode =
  | 'ERR_INVALID_ARG' // an option or argument failed validation
  | 'ERR_DISPOSED' // a Tensor / model / optimizer was used after dispose()
  | 'ERR_TORCH' // any other LibTorch error
  | 'ERR_TORCH_SHAPE' // a tensor has the wrong rank / size / channel count
  | 'ERR_TORCH_DTYPE' // a tensor has the wrong dtype
  | 'ERR_TORCH_VALUE' // a value is out of range / not finite
  | 'ERR_TORCH_INDEX'
  | 'ERR_TORCH_OOM'
  | 'ERR_TORCH_NOT_IMPLEMENTED'
  | 'ERR_TORCH_DEVICE' // a device is unavailable (e.g. cuda on a CPU build)
  | 'ERR_NATIVE_LOAD' // the native addon could not be loaded
  | 'ERR_NPY_FORMAT' // a .npy file is malformed or unsupported
  | 'ERR_CHECKPOINT_FORMAT' // a checkpoint is truncated, corrupt, hostile or not a torch file
  | 'ERR_CHECKPOINT_KEYS' // missing / unexpected / shape-mismatched state_dict keys
  | 'ERR_DATA_FORMAT' // an input data source is malformed
  | 'ERR_CONFIG' // a training config failed validation
  | 'ERR_ABORTED' // an AbortSignal fired
  | 'ERR_DISTRIBUTED' // a data-parallel job failed: rendezvous time-out, a rank that died, ranks that disagree
  | 'ERR_IO'; // a file could not be read or written

export class TorchSslError extends Error {
  readonly code: ErrorCode;
  /** Extra structured detail (e.g. the lists of missing / unexpected keys). */
  readonly details?: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'TorchSslError';
    this.code = code;
    if (details !== undefined) this.details = details;
  }
}

/** sharp-style uniform validation message. */
export function invalidArg(name: string, expected: string, actual: unknown): TorchSslError {
  const kind = actual === null ? 'null' : Array.isArray(actual) ? 'array' : typeof actual;
  let shown: string;
  try {
    shown = typeof actual === 'string' ? JSON.stringify(actual) : String(actual);
  } catch {
    shown = '[unprintable]';
  }
  if (shown.length > 80) shown = `${shown.slice(0, 77)}...`;
  return new TorchSslError('ERR_INVALID_ARG', `Expected ${expected} for ${name} but received ${shown} of type ${kind}`);
}

/** Convert anything thrown (native error objects carry `.code`) into a TorchSslError with the given stack. */
export function rethrowWithStack(err: unknown, callSite: Error): never {
  if (err instanceof TorchSslError) {
    err.stack = `${err.name} [${err.code}]: ${err.message}\n${(callSite.stack ?? '').split('\n').slice(1).join('\n')}`;
    throw err;
  }
  const e = err as { code?: string; message?: string };
  const code = (typeof e?.code === 'string' && e.code.startsWith('ERR_') ? e.code : 'ERR_TORCH') as ErrorCode;
  const out = new TorchSslError(code, e?.message ?? String(err));
  out.stack = `${out.name} [${code}]: ${out.message}\n${(callSite.stack ?? '').split('\n').slice(1).join('\n')}`;
  throw out;
}
