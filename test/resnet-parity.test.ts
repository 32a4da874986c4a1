import { describe, expect, it } from 'vitest';
import { resnet, type ResNetDepth, type Stem } from '../lib/models.js';
import { Tensor } from '../lib/tensor.js';
import { fixtureArray, fixtureJson, fixtureTensor, relError } from './helpers/fixtures.js';

interface Case {
  name: string;
  depth: ResNetDepth;
  stem: Stem;
  keys: string[];
}
const cases = fixtureJson<Case[]>('resnet', 'cases.json');

async function loadCase(c: Case) {
  const net = resnet({ depth: c.depth, stem: c.stem });
  const sd: Record<string, Tensor> = {};
  for (const k of c.keys) sd[k] = await fixtureTensor('resnet', c.name, 'weights', k);
  await net.loadStateDict(sd);
  return net;
}

describe('ResNet parity with torchvision (identical weights)', () => {
  for (const c of cases) {
    describe(`ResNet-${c.depth}, ${c.stem} stem`, () => {
      it("has exactly torchvision's parameter and buffer names", () => {
        const net = resnet({ depth: c.depth, stem: c.stem });
        expect(Object.keys(net.stateDict()).sort()).toEqual([...c.keys].sort());
      });

      it("eval(): pooled features and the layer4 map equal torchvision's within 1e-4 of scale", async () => {
        const net = await loadCase(c);
        net.eval();
        const x = await fixtureTensor('resnet', c.name, 'input');
        const pooled = await net.forward(x, { grad: false });
        const ref = await fixtureArray('resnet', c.name, 'eval_pooled');
        expect(pooled.shape).toEqual(ref.shape);
        expect(relError(pooled.toTypedArray() as Float32Array, ref.data)).toBeLessThan(1e-4);
        const map = await net.featureMap(x, { grad: false });
        const refMap = await fixtureArray('resnet', c.name, 'eval_map');
        expect(map.shape).toEqual(refMap.shape);
        if (c.stem === 'cifar') expect(map.shape.slice(1)).toEqual([c.depth === 50 ? 2048 : 512, 5, 5]);
        expect(relError(map.toTypedArray() as Float32Array, refMap.data)).toBeLessThan(1e-4);
      });

      it("train(): batch statistics and running-stat updates equal torchvision's", async () => {
        const net = await loadCase(c);
        net.train();
        const x = await fixtureTensor('resnet', c.name, 'input');
        const pooled = await net.forward(x);
        const ref = await fixtureArray('resnet', c.name, 'train_pooled');
        const exact = (await fixtureArray('resnet', c.name, 'train_pooled_f64')).data;
        // Within 1e-4 of scale, or a few times PyTorch's own float32 error where the batch statistics amplify rounding
        // (ResNet-50's layer4 normalizes 3 × 2 × 2 values per channel: PyTorch float32 is ~7e-5 from float64 there).
        const ours = relError(pooled.toTypedArray() as Float32Array, exact);
        const theirs = relError(ref.data, exact);
        expect(ours, `ours ${ours.toExponential(2)}, PyTorch float32 ${theirs.toExponential(2)}`).toBeLessThan(Math.max(1e-4, 4 * theirs));
        const sd = net.stateDict();
        for (const k of c.keys.filter((k) => k.includes('running') || k.includes('num_batches'))) {
          const expected = await fixtureArray('resnet', c.name, 'after_train', k);
          const actual = sd[k]!.toTypedArray();
          if (k.endsWith('num_batches_tracked')) expect(actual[0]).toBe(expected.data[0]);
          else expect(relError(actual as Float32Array, expected.data), k).toBeLessThan(1e-4);
        }
      });
    });
  }
});
