/** The checkpoint readers' error for a file that is not what it claims to be. */
import { TorchSslError } from '../errors.js';

/** `<path>: <what>` as ERR_CHECKPOINT_FORMAT; `path` names the file (or the place in it, e.g. a tensor) at fault. */
export function formatError(path: string, what: string): TorchSslError {
  return new TorchSslError('ERR_CHECKPOINT_FORMAT', `${path}: ${what}`);
}
