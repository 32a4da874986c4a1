/** The .npy readers' error for bytes that are not a .npy file they can read. */
import { TorchSslError } from '../errors.js';

/** `<name>: <problem>` as ERR_NPY_FORMAT, with the file in `details.file`. */
export function formatError(name: string, problem: string): TorchSslError {
  return new TorchSslError('ERR_NPY_FORMAT', `${name}: ${problem}`, { file: name });
}
