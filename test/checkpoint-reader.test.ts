import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { TorchSslError } from '../lib/errors.js';
import { findTensors, readTorchFile, tensorMap, TensorRef, type TorchFile } from '../lib/checkpoint/torch-file.js';
import { PyGlobal, PyObject, dictGet, isTuple, type PyValue } from '../lib/checkpoint/pyvalue.js';
import { ZipReader } from '../lib/checkpoint/zip.js';
import { inspectCheckpoint } from '../lib/checkpoint/solo-learn.js';
import { ensureCheckpointFixtures, expected, sha256, type ExpectedTensor } from './helpers/checkpoint-fixtures.js';
import { FIXTURES, fixturePath } from './helpers/fixtures.js';
import { PYTHON } from './helpers/python.js';

beforeAll(() => ensureCheckpointFixtures());

const open: TorchFile[] = [];
async function read(path: string): Promise<TorchFile> {
  const f = await readTorchFile(path);
  open.push(f);
  return f;
}
afterEach(async () => {
  for (const f of open.splice(0)) await f.close();
  vi.restoreAllMocks();
});

async function expectTensor(t: PyValue | undefined, e: ExpectedTensor, key: string): Promise<void> {
  expect(t, key).toBeInstanceOf(TensorRef);
  const ref = t as TensorRef;
  expect({ key, dtype: ref.dtype, shape: ref.shape, stride: ref.stride, offset: ref.storageOffset }).toEqual({
    key,
    dtype: e.dtype,
    shape: e.shape,
    stride: e.stride,
    offset: e.storage_offset,
  });
  const data = await ref.read();
  expect(data.length, key).toBe(e.shape.reduce((a, b) => a * b, 1));
  expect(sha256(data), `${key} bytes`).toBe(e.sha256);
}

async function expectFormatError(promise: Promise<unknown>, pattern?: RegExp): Promise<TorchSslError> {
  const err = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TorchSslError);
  expect((err as TorchSslError).code).toBe('ERR_CHECKPOINT_FORMAT');
  if (pattern) expect((err as Error).message).toMatch(pattern);
  return err as TorchSslError;
}

describe('readTorchFile on files PyTorch wrote', () => {
  for (const [caseName, file, format] of [
    ['dtypes', 'dtypes.pt', 'zip'],
    ['dtypes_legacy', 'dtypes_legacy.pt', 'legacy'],
    ['dtypes_deflated', 'dtypes_deflated.pt', 'zip'],
    ['dtypes_zip64', 'dtypes_zip64.pt', 'zip'],
  ] as const) {
    it(`reads every dtype, stride layout, offset, scalar and empty tensor of ${file} (${format} format) bit-exactly`, async () => {
      const f = await read(fixturePath('checkpoints', caseName, file));
      expect(f.format).toBe(format);
      const exp = expected(caseName);
      expect(f.root).toBeInstanceOf(Map);
      for (const [key, e] of Object.entries(exp.tensors)) await expectTensor((f.root as Map<PyValue, PyValue>).get(key), e, key);
    });
  }

  it('gives float16 and bfloat16 back as raw 16-bit words and int64 as BigInt64Array', async () => {
    const f = await read(fixturePath('checkpoints', 'dtypes', 'dtypes.pt'));
    const m = f.root as Map<PyValue, PyValue>;
    expect(await (m.get('float16') as TensorRef).read()).toBeInstanceOf(Uint16Array);
    expect(await (m.get('bfloat16') as TensorRef).read()).toBeInstanceOf(Uint16Array);
    const i64 = await (m.get('int64') as TensorRef).read();
    expect(Array.from(i64 as BigInt64Array)).toEqual([-(2n ** 62n), -1n, 0n, 1n, 2n ** 53n + 1n, 2n ** 62n]);
    expect(Array.from((await (m.get('bool') as TensorRef).read()) as Uint8Array)).toEqual([1, 0, 1, 1]);
  });

  it('keeps views of one storage on one storage record, and marks nn.Parameter', async () => {
    const f = await read(fixturePath('checkpoints', 'dtypes', 'dtypes.pt'));
    const m = f.root as Map<PyValue, PyValue>;
    expect((m.get('view_a') as TensorRef).storage).toBe((m.get('view_b') as TensorRef).storage);
    const p = m.get('parameter') as TensorRef;
    expect(p.isParameter).toBe(true);
    expect(p.requiresGrad).toBe(true);
  });

  it('reads a torchvision ResNet-50 .pth bit-exactly', async () => {
    const f = await read(fixturePath('checkpoints', 'torchvision_resnet50', 'resnet50.pth'));
    const sd = tensorMap(f.root)!;
    const exp = expected('torchvision_resnet50');
    expect([...sd.keys()]).toEqual(Object.keys(exp.tensors));
    for (const [key, e] of Object.entries(exp.tensors)) await expectTensor(sd.get(key), e, key);
  });

  it('reads a legacy-format (pre-1.6, non-zip) torchvision .pth bit-exactly', async () => {
    const f = await read(fixturePath('checkpoints', 'legacy_resnet18', 'resnet18-legacy.pth'));
    expect(f.format).toBe('legacy');
    const sd = tensorMap(f.root)!;
    const exp = expected('legacy_resnet18');
    for (const [key, e] of Object.entries(exp.tensors)) await expectTensor(sd.get(key), e, key);
  });

  it('reads a solo-learn checkpoint whose conv weights are channels_last, honouring the strides', async () => {
    const f = await read(fixturePath('checkpoints', 'vicreg_channels_last', 'vicreg-cifar10-q9w8e7r6-ep=999.ckpt'));
    const sd = tensorMap(dictGet(f.root, 'state_dict'))!;
    const w = sd.get('backbone.layer1.0.conv1.weight')!;
    expect(w.stride).toEqual([576, 1, 192, 64]);
    expect(w.isContiguous).toBe(false);
    const exp = expected('vicreg_channels_last');
    for (const [key, e] of Object.entries(exp.tensors)) await expectTensor(sd.get(key), e, key);
  });

  it('reads a float16 state dict', async () => {
    const f = await read(fixturePath('checkpoints', 'fp16_state_dict', 'backbone-fp16.pth'));
    const sd = tensorMap(f.root)!;
    const exp = expected('fp16_state_dict');
    for (const [key, e] of Object.entries(exp.tensors)) await expectTensor(sd.get(key), e, key);
  });

  it('opens a 150 MB Lightning checkpoint reading only its pickle, and a backbone read skips the optimizer state', async () => {
    const spy = vi.spyOn(ZipReader.prototype, 'readAt');
    const path = fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt');
    const f = await read(path);
    const opened = spy.mock.calls.reduce((a, c) => a + (c[1] as number), 0);
    expect(opened).toBeLessThan(1 << 20);
    const sd = tensorMap(dictGet(f.root, 'state_dict'))!;
    let wanted = 0;
    for (const [k, t] of sd) {
      if (!k.startsWith('backbone.')) continue;
      wanted += t.byteLength;
      await t.read();
    }
    // Tensor bytes plus one 30-byte local zip header per storage, nothing else.
    const total = spy.mock.calls.reduce((a, c) => a + (c[1] as number), 0) - opened;
    const headers = 30 * [...sd.keys()].filter((k) => k.startsWith('backbone.')).length;
    expect(total - wanted).toBeLessThanOrEqual(headers);
    expect(wanted).toBeLessThan(readFileSync(path).length / 3);
  });

  it('reads Lightning metadata, optimizer momentum buffers (int-keyed state) and omegaconf hyper_parameters as records', async () => {
    const f = await read(fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt'));
    const exp = expected('vicreg_omegaconf');
    expect(dictGet(f.root, 'epoch')).toBe(999);
    expect(dictGet(f.root, 'global_step')).toBe(195000);
    expect(dictGet(f.root, 'pytorch-lightning_version')).toBe('2.1.2');
    const opt = dictGet(f.root, 'optimizer_states') as PyValue[];
    const state = dictGet(opt[0], 'state') as Map<PyValue, PyValue>;
    expect(state.has(0)).toBe(true);
    await expectTensor(dictGet(state.get(0), 'momentum_buffer'), exp.momentum_buffer_0 as ExpectedTensor, 'momentum_buffer');
    const groups = dictGet(opt[0], 'param_groups') as PyValue[];
    expect(groups.map((g) => dictGet(g, 'name'))).toEqual(['backbone', 'classifier', 'projector']);
    const hp = dictGet(f.root, 'hyper_parameters');
    expect(hp).toBeInstanceOf(PyObject);
    expect((hp as PyObject).$class).toBe('omegaconf.dictconfig.DictConfig');
    const sd = dictGet(f.root, 'state_dict') as Map<PyValue, PyValue>;
    const shape = (sd.get('backbone.conv1.weight') as TensorRef).shape;
    expect(shape).toEqual([64, 3, 3, 3]);
  });

  it('turns unknown classes (pathlib.PosixPath, argparse.Namespace) into inert records with their arguments and state', async () => {
    const f = await read(fixturePath('checkpoints', 'barlow_hparams_dict', 'barlow_twins-cifar100-ep=49.ckpt'));
    const cb = dictGet(dictGet(f.root, 'callbacks'), 'ModelCheckpoint');
    const dir = dictGet(cb, 'dirpath') as PyObject;
    expect(dir).toBeInstanceOf(PyObject);
    // What this Python pickled: class and arguments of PosixPath.__reduce__ (pathlib.PosixPath and the path's
    // parts up to Python 3.12; pathlib._local.PosixPath and the whole path from 3.13).
    const [cls, args] = JSON.parse(
      execFileSync(
        process.env.TORCH_SSL_PYTHON ?? PYTHON,
        [
          '-c',
          'import json, pathlib; c, a = pathlib.PosixPath("/tmp/trained_models/barlow").__reduce__(); print(json.dumps([c.__module__ + "." + c.__qualname__, list(a)]))',
        ],
        { encoding: 'utf8' },
      ),
    ) as [string, string[]];
    expect(dir.$class).toBe(cls);
    expect(dir.args).toEqual(args);
    const ns = dictGet(cb, 'args') as PyObject;
    expect(ns.$class).toBe('argparse.Namespace');
    expect(dictGet(ns.state ?? null, 'method')).toBe('barlow_twins');
    expect(dictGet(dictGet(f.root, 'hyper_parameters'), 'dataset')).toBe('cifar100');
  });

  it('finds every tensor reachable from the root with a readable path', async () => {
    const f = await read(fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt'));
    const found = findTensors(f.root);
    const paths = found.map((x) => x.path);
    expect(paths).toContain('["state_dict"]["backbone.conv1.weight"]');
    expect(paths).toContain('["optimizer_states"][0]["state"][0]["momentum_buffer"]');
  });

  it('reads tuples as tuples and torch.Size-free shapes as plain numbers', async () => {
    const f = await read(fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt'));
    const sched = (dictGet(f.root, 'lr_schedulers') as PyValue[])[0];
    expect(dictGet(sched, 'base_lrs')).toEqual([0.3, 0.1, 0.3]);
    expect(isTuple(dictGet(sched, 'base_lrs'))).toBe(false);
  });

  it('maps Python values: sets, frozensets, bytes, ints beyond 2^53 as BigInt, floats, None, nested tuples', async () => {
    const f = await read(fixturePath('checkpoints', 'tiny_lightning', 'tiny.ckpt'));
    const v = dictGet(f.root, 'sets') as PyValue[];
    expect(isTuple(v)).toBe(true);
    expect(v[0]).toEqual(new Set([1, 2]));
    expect(v[1]).toEqual(new Set(['a']));
    expect(v[2]).toEqual(new Uint8Array([0, 1, ...new TextEncoder().encode('bytes')]));
    expect(v[3]).toBe(2n ** 70n);
    expect(v[4]).toBe(-(2n ** 70n));
    expect(v[5]).toBe(1.5);
    expect(v[6]).toBeNull();
    expect(v[7]).toEqual([1, [2, [3]]]);
    const exp = expected('tiny_lightning');
    const sd = tensorMap(dictGet(f.root, 'state_dict'))!;
    for (const [key, e] of Object.entries(exp.tensors)) await expectTensor(sd.get(key), e, key);
  });

  it('fails reads after close() with ERR_IO', async () => {
    const f = await readTorchFile(fixturePath('checkpoints', 'dtypes', 'dtypes.pt'));
    const t = (f.root as Map<PyValue, PyValue>).get('float32') as TensorRef;
    await f.close();
    await expect(t.read()).rejects.toMatchObject({ code: 'ERR_IO' });
  });

  it('reports a missing file as ERR_IO', async () => {
    await expect(readTorchFile(join(FIXTURES, 'checkpoints', 'nope.pt'))).rejects.toMatchObject({ code: 'ERR_IO' });
  });
});

describe('readTorchFile on hostile and corrupt files', () => {
  const h = (name: string): string => fixturePath('checkpoints', 'hostile', name);

  for (const name of ['os_system.pt', 'os_system_legacy.pt']) {
    it(`never runs the os.system / eval a pickle asks for (${name}); the calls become inert records`, async () => {
      const marker = (expected('hostile') as unknown as { marker: string }).marker;
      const f = await read(h(name));
      expect(existsSync(marker)).toBe(false);
      const a = dictGet(f.root, 'a') as PyObject;
      expect(a).toBeInstanceOf(PyObject);
      expect(a.$class).toBe('posix.system');
      expect(a.args[0]).toMatch(/^touch /);
      expect((dictGet(f.root, 'b') as PyObject).$class).toBe('builtins.eval');
      expect(existsSync(marker)).toBe(false);
    });
  }

  it('reads a hand-made tensor record with an offset inside its storage', async () => {
    const f = await read(h('valid_fake.pt'));
    const t = dictGet(f.root, 'w') as TensorRef;
    expect(Array.from((await t.read()) as Float32Array)).toEqual([4, 5, 6, 7, 8, 9]);
  });

  const refused: Array<[string, RegExp]> = [
    ['offset_past_end.pt', /offset_past_end\.pt.*past the end of storage 0/],
    ['stride_past_end.pt', /stride_past_end\.pt.*past the end of storage 0/],
    ['huge_shape.pt', /huge_shape\.pt.*4\.000e\+12 elements/],
    ['huge_expanded.pt', /huge_expanded\.pt.*elements/],
    ['negative_stride.pt', /negative_stride\.pt.*stride/],
    ['storage_short.pt', /storage_short\.pt.*declares 100 float32 elements/],
    ['storage_missing.pt', /storage_missing\.pt.*data\/0 is missing/],
    ['truncated.pt', /truncated\.pt.*(truncated|end-of-central-directory)/],
    ['truncated_legacy.pt', /truncated_legacy\.pt.*(truncated|past the end|ends early)/],
    ['random.bin', /random\.bin: not a PyTorch file/],
    ['random_pickle_head.bin', /random_pickle_head\.bin/],
    ['not_torch.zip', /not_torch\.zip: a zip archive without <archive>\/data\.pkl/],
    ['empty.pt', /empty\.pt: empty file/],
    ['plain_pickle.pkl', /plain_pickle\.pkl.*not a torch\.save file/],
    ['tar_format.pt', /tar_format\.pt.*tar-format torch\.save file/],
    ['torchscript.pt', /torchscript\.pt.*TorchScript archive/],
  ];
  for (const [name, pattern] of refused) {
    it(`refuses ${name} with ERR_CHECKPOINT_FORMAT naming the file and the fault`, async () => {
      await expectFormatError(readTorchFile(h(name)), pattern);
    });
  }

  for (const name of ['deep_list.pt', 'deep_tuple.pt', 'deep_mark.pt', 'deep_dict.pt']) {
    it(`unpickles a 200 000-deep nested pickle (${name}) without overflowing the stack`, async () => {
      const f = await read(h(name));
      expect(findTensors(f.root)).toEqual([]);
      let depth = 0;
      let v: PyValue | undefined = f.root;
      while (depth < 300_000 && (Array.isArray(v) || v instanceof Map)) {
        v = Array.isArray(v) ? v[v.length - 1] : v.get(1);
        depth++;
      }
      expect(depth).toBeGreaterThanOrEqual(199_999);
    });
  }

  it('refuses a pickle that re-copies one memoised dict 20 000 times (10^9 element copies) instead of hanging', async () => {
    const t0 = Date.now();
    await expectFormatError(readTorchFile(h('copy_bomb.pt')), /copy_bomb\.pt.*copied more than/);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('recognises a checkpoint whose config is a 2^60-path DAG, with bounded work and no prototype pollution', async () => {
    const t0 = Date.now();
    const info = await inspectCheckpoint(h('dag_config.ckpt'), { argsJson: false });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(info.format).toBe('solo-learn-lightning');
    expect(JSON.stringify(info.config)).toContain('<truncated>');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(info.config)).toBe(Object.prototype);
  });

  it('names the file in every error', async () => {
    const err = await expectFormatError(readTorchFile(h('huge_shape.pt')));
    expect(err.message).toContain(basename(h('huge_shape.pt')));
  });

  it('treats a global that is referenced but never called as a PyGlobal name', async () => {
    const f = await read(fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt'));
    const hp = dictGet(f.root, 'hyper_parameters') as PyObject;
    const meta = dictGet(hp.state ?? null, '_metadata') as PyObject;
    expect(dictGet(meta.state ?? null, 'ref_type')).toEqual(new PyGlobal('typing.Any'));
  });
});
