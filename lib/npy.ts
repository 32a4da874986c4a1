/**
 * The NumPy `.npy` format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html),
 * as plain bytes and typed arrays: no native Tensor here, so readers, writers and data sources share it.
 *
 * Layout: magic `\x93NUMPY`, major, minor, a little-endian header length (uint16 in v1, uint32 in v2/v3),
 * then a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with
 * spaces and a final newline so that the data starts on a 64-byte boundary, then the raw C-order data.
 * v1/v2 headers are latin-1, v3 headers UTF-8.
 */
export { parseNpyHeader, serializeNpyHeader, type NpyArray, type NpyHeader } from './npy/header.js';
export { parseNpy, readNpyFile, NpyFileReader } from './npy/read.js';
export { writeNpyFile, NpyStreamWriter, type NpyStreamOptions } from './npy/write.js';
