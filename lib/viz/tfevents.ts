/**
 * TensorBoard event files: TFRecord framing around `tensorflow.Event` protocol-buffer messages holding scalar
 * summaries, what `tensorboard --logdir` (and torch.utils.tensorboard's SummaryWriter) read and write.
 *
 * TFRecord: uint64 length (little-endian), uint32 masked CRC-32C of the length bytes, the data, uint32 masked
 * CRC-32C of the data; mask(c) = ((c >>> 15) | (c << 17)) + 0xa282ead8 (mod 2³²).
 * Event: 1 wall_time (double), 2 step (int64), 3 file_version (string, the first record: "brain.Event:2"),
 * 5 summary (Summary: repeated 1 Value { 1 tag (string), 2 simple_value (float) }).
 *
 * Written by hand: ~60 lines against the two public .proto files, where the npm writers either pull in
 * TensorFlow.js or are unmaintained.
 */
import { createWriteStream, type WriteStream } from 'node:fs';

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli), as TFRecord uses. */
export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC32C_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function maskedCrc(data: Uint8Array): number {
  const c = crc32c(data);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord around `data`. */
export function tfRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc(data), 12 + data.length);
  return out;
}

function varint(n: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return out;
}

function lengthDelimited(field: number, bytes: Uint8Array): number[] {
  return [...varint((field << 3) | 2), ...varint(bytes.length), ...bytes];
}

/** An Event message: wall time, step, and either the file version or scalar values. */
export function encodeEvent(wallTime: number, step: number, content: { fileVersion: string } | { scalars: Record<string, number> }): Uint8Array {
  const head = Buffer.alloc(9);
  head[0] = (1 << 3) | 1; // wall_time: 64-bit
  head.writeDoubleLE(wallTime, 1);
  const bytes: number[] = [...head, ...varint((2 << 3) | 0), ...varint(step)];
  if ('fileVersion' in content) {
    bytes.push(...lengthDelimited(3, Buffer.from(content.fileVersion, 'utf8')));
  } else {
    const summary: number[] = [];
    for (const [tag, value] of Object.entries(content.scalars)) {
      const f = Buffer.alloc(5);
      f[0] = (2 << 3) | 5; // simple_value: 32-bit
      f.writeFloatLE(value, 1);
      summary.push(...lengthDelimited(1, Uint8Array.from([...lengthDelimited(1, Buffer.from(tag, 'utf8')), ...f])));
    }
    bytes.push(...lengthDelimited(5, Uint8Array.from(summary)));
  }
  return Uint8Array.from(bytes);
}

/** Appends scalar events to one event file, in order, without blocking the event loop. */
export class EventFileWriter {
  readonly path: string;
  private readonly stream: WriteStream;
  private error: Error | undefined;

  constructor(path: string) {
    this.path = path;
    this.stream = createWriteStream(path, { flags: 'a' });
    this.stream.on('error', (err) => {
      this.error ??= err;
    });
    this.stream.write(tfRecord(encodeEvent(Date.now() / 1000, 0, { fileVersion: 'brain.Event:2' })));
  }

  scalars(step: number, values: Record<string, number>, wallTime = Date.now() / 1000): void {
    const finite = Object.fromEntries(Object.entries(values).filter(([, v]) => typeof v === 'number' && Number.isFinite(v)));
    if (Object.keys(finite).length === 0 || this.error) return;
    this.stream.write(tfRecord(encodeEvent(wallTime, step, { scalars: finite })));
  }

  /** Flushes and closes; rejects with the first write error, if any. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.stream.end(resolve));
    if (this.error) throw this.error;
  }
}
