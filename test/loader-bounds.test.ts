// The loader's remaining holes: huge integers decode in linear time and equal Python's; refusals match
// what Python / PyTorch refuse.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { unpickle } from '../lib/checkpoint/unpickle.js';
import { TorchSslError } from '../lib/errors.js';

function py(code: string): string {
  return execFileSync('/usr/bin/python3', ['-c', code], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 }).trim();
}

describe('pickle integers', () => {
  it('a 1 MB LONG4 decodes in well under a second and equals the integer Python pickled', () => {
    // Python writes the pickle (hex on stdout) and a fingerprint of the value: sign, bit length, low and high 64 bits.
    const out = py(
      'import pickle,sys\nv = -(1 << 8_000_000) + 0x1234567890abcdef * (1 << 4_000_000) + 987654321\n' +
        'p = pickle.dumps(v, protocol=2)\nassert p[2] == 0x8b\n' +
        'print(p.hex()); print(1 if v < 0 else 0, v.bit_length(), hex(v & ((1<<64)-1)), hex((abs(v) >> (abs(v).bit_length() - 64))))',
    ).split('\n');
    const data = Buffer.from(out[0]!, 'hex');
    expect(data.length).toBeGreaterThan(1_000_000);
    const [neg, bits, low, high] = out[1]!.split(' ');
    const t0 = performance.now();
    const v = unpickle(data).value as bigint;
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(1000); // was minutes (quadratic shift-and-or)
    const a = v < 0n ? -v : v;
    expect(v < 0n).toBe(neg === '1');
    expect(a.toString(2).length).toBe(Number(bits));
    expect(`0x${(v & ((1n << 64n) - 1n)).toString(16)}`).toBe(low);
    expect(`0x${(a >> BigInt(a.toString(2).length - 64)).toString(16)}`).toBe(high);
  });

  it('LONG1 edge values (0, ±1, ±2^63, 255, -256) equal Python\'s', () => {
    const values = ['0', '1', '-1', '255', '-256', str(2n ** 63n), str(-(2n ** 63n)), str(2n ** 64n + 5n)];
    const hex = py(`import pickle\nfor v in [${values.join(',')}]: print(pickle.dumps(v, protocol=2).hex())`).split('\n');
    hex.forEach((h, i) => {
      const v = unpickle(Buffer.from(h, 'hex')).value;
      expect(BigInt(v as number | bigint)).toBe(BigInt(values[i]!));
    });
  });

  it('a decimal INT literal longer than Python\'s 4300-digit limit is refused (Python refuses it too)', () => {
    const long = '9'.repeat(5000);
    const refused = py(`import pickle\ntry:\n  pickle.loads(b'I${long}\\n.')\n  print('loaded')\nexcept ValueError as e:\n  print('refused')`);
    expect(refused).toBe('refused');
    let e: unknown;
    try {
      unpickle(Buffer.from(`I${long}\n.`, 'latin1'));
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(TorchSslError);
    expect((e as Error).message).toContain('5000 digits exceeds Python');
    expect(unpickle(Buffer.from(`I${'9'.repeat(4300)}\n.`, 'latin1')).value).toBe(BigInt('9'.repeat(4300)));
  });
});

function str(v: bigint): string {
  return v.toString();
}
