/** The checkpoint layer's public surface (pure TypeScript; no native addon). See docs/checkpoints.md. */
export { readTorchFile, findTensors, tensorMap, type TorchFile, type FoundTensor } from './torch-file.js';
export { TensorRef, TorchStorage, STORAGE_DTYPES, type ByteSource } from './tensor-ref.js';
export { writeTorchFile, type WritableValue, type WriteTorchFileOptions } from './torch-writer.js';
export { readSafetensors, writeSafetensors, type SafetensorsFile } from './safetensors.js';
export { isTensorData, type TensorData, type WritableTensor } from './tensor-data.js';
export {
  inspectCheckpoint,
  openCheckpoint,
  recognizeCheckpoint,
  toPlain,
  type CheckpointFormat,
  type CheckpointEra,
  type CheckpointInfo,
  type CheckpointModules,
  type HeadLayer,
  type InspectOptions,
  type InspectResult,
  type KeySummary,
  type Normalization,
} from './solo-learn.js';
export { unpickle, type UnpickleOptions, type UnpickleResult, type PyCallable } from './unpickle.js';
export { PyGlobal, PyObject, PySlice, dictGet, getPyState, isDict, isTuple, makeTuple, type PyDict, type PyValue } from './pyvalue.js';
export { ZipReader, type ZipEntry } from './zip.js';
export { writeAtomically } from '../io.js';
