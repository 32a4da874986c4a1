// A training run's logs: metrics.csv equals the events the run reported, and the TensorBoard event file, read
// by an independent reader (Python: Google's protobuf runtime with the Event / Summary messages declared from
// TensorFlow's .proto, CRC-32C from crcmod), holds the same values.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { train, type TrainEvent } from '../lib/train.js';
import { readMetricsCsv } from '../lib/viz/run-log.js';
import { crc32c } from '../lib/viz/tfevents.js';
import { digitsSubset } from './helpers/datasets.js';

const READER = String.raw`
import json, struct, sys
import crcmod.predefined
from google.protobuf import descriptor_pb2, descriptor_pool
try:
    from google.protobuf.message_factory import GetMessageClass
except ImportError:
    from google.protobuf import message_factory
    GetMessageClass = lambda d: message_factory.MessageFactory().GetPrototype(d)

# tensorflow/core/framework/summary.proto and tensorflow/core/util/event.proto, the fields TensorBoard's scalars use.
f = descriptor_pb2.FileDescriptorProto(name="event.proto", package="tensorflow", syntax="proto3")
D = descriptor_pb2.FieldDescriptorProto
s = f.message_type.add(name="Summary")
v = s.nested_type.add(name="Value")
v.field.add(name="tag", number=1, type=D.TYPE_STRING, label=D.LABEL_OPTIONAL)
v.field.add(name="simple_value", number=2, type=D.TYPE_FLOAT, label=D.LABEL_OPTIONAL)
s.field.add(name="value", number=1, type=D.TYPE_MESSAGE, type_name=".tensorflow.Summary.Value", label=D.LABEL_REPEATED)
e = f.message_type.add(name="Event")
e.field.add(name="wall_time", number=1, type=D.TYPE_DOUBLE, label=D.LABEL_OPTIONAL)
e.field.add(name="step", number=2, type=D.TYPE_INT64, label=D.LABEL_OPTIONAL)
e.field.add(name="file_version", number=3, type=D.TYPE_STRING, label=D.LABEL_OPTIONAL)
e.field.add(name="summary", number=5, type=D.TYPE_MESSAGE, type_name=".tensorflow.Summary", label=D.LABEL_OPTIONAL)
pool = descriptor_pool.DescriptorPool()
pool.Add(f)
Event = GetMessageClass(pool.FindMessageTypeByName("tensorflow.Event"))

crc = crcmod.predefined.mkCrcFun("crc-32c")
mask = lambda c: ((((c >> 15) | (c << 17)) & 0xffffffff) + 0xa282ead8) & 0xffffffff
data = open(sys.argv[1], "rb").read()
out, pos = [], 0
while pos < len(data):
    header = data[pos:pos + 8]
    (n,) = struct.unpack("<Q", header)
    assert struct.unpack("<I", data[pos + 8:pos + 12])[0] == mask(crc(header)), "length crc"
    body = data[pos + 12:pos + 12 + n]
    assert struct.unpack("<I", data[pos + 12 + n:pos + 16 + n])[0] == mask(crc(body)), "data crc"
    pos += 16 + n
    ev = Event()
    ev.ParseFromString(body)
    out.append({"step": ev.step, "wall_time": ev.wall_time, "file_version": ev.file_version,
                "values": {x.tag: x.simple_value for x in ev.summary.value}})
print(json.dumps(out))
`;
import { PYTHON } from './helpers/python.js';
import { makeTmpDir } from './helpers/tmp.js';

let data: string;
const work = makeTmpDir('logs');
beforeAll(async () => {
  data = await digitsSubset(work, 32);
});

describe('run logs', () => {
  it('CRC-32C matches the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('metrics.csv equals the reported events; the TensorBoard file read by protobuf holds the same scalars', async () => {
    const dir = join(work, 'run');
    const events: TrainEvent[] = [];
    const r = await train(
      {
        method: 'vicreg',
        data: { train: data, val: data },
        projector: { hiddenDims: [64], outputDim: 32 },
        augmentation: [{ size: 16 }],
        batchSize: 16,
        epochs: 2,
        logEvery: 1,
        knn: { every: 1 },
        checkpoint: { dir },
        seed: 3,
      },
      { onProgress: (e) => events.push(e) },
    );
    expect(r.metricsCsv).toBe(join(dir, 'metrics.csv'));
    expect(existsSync(r.eventsFile)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.startsWith('events.out.tfevents.'))).toHaveLength(1);

    const csv = readMetricsCsv(r.metricsCsv);
    const steps = events.filter((e) => e.type === 'step');
    const knns = events.filter((e) => e.type === 'knn');
    const epochs = events.filter((e) => e.type === 'epoch');
    expect(steps).toHaveLength(4);
    expect(knns.length).toBeGreaterThanOrEqual(2);
    expect(csv.rows).toHaveLength(steps.length + knns.length + epochs.length);
    const stepRows = csv.rows.filter((row) => 'train/loss' in row.values);
    expect(stepRows.map((row) => row.step)).toEqual(steps.map((e) => e.globalStep));
    stepRows.forEach((row, i) => {
      const e = steps[i]!;
      expect(row.epoch).toBe(e.epoch);
      expect(row.values['train/loss']).toBe(e.loss);
      expect(row.values['train/lr']).toBe(e.lr);
      expect(row.values['perf/images_per_sec']).toBe(e.imagesPerSec);
      expect(row.values['perf/step_ms']).toBe(e.stepMs);
      for (const [term, v] of Object.entries(e.terms)) expect(row.values[`train/${term}`]).toBe(v);
    });
    expect(csv.rows.filter((row) => 'knn/top1' in row.values).map((row) => row.values['knn/top1'])).toEqual(knns.map((e) => e.top1));
    expect(csv.rows.filter((row) => 'train/loss_epoch' in row.values).map((row) => row.values['train/loss_epoch'])).toEqual(epochs.map((e) => e.loss));
    expect(csv.columns).toEqual(
      expect.arrayContaining(['train/loss', 'train/sim', 'train/var', 'train/cov', 'train/class_loss', 'train/lr', 'knn/top1', 'knn/top5', 'train/loss_epoch']),
    );

    const tb = JSON.parse(execFileSync(PYTHON, ['-c', READER, r.eventsFile], { encoding: 'utf8' })) as {
      step: number;
      wall_time: number;
      file_version: string;
      values: Record<string, number>;
    }[];
    expect(tb[0]!.file_version).toBe('brain.Event:2');
    const scalars = tb.slice(1);
    expect(scalars).toHaveLength(csv.rows.length);
    scalars.forEach((ev, i) => {
      const row = csv.rows[i]!;
      expect(ev.step).toBe(row.step);
      expect(Math.abs(ev.wall_time - row.wall_time)).toBeLessThan(0.001);
      expect(Object.keys(ev.values).sort()).toEqual(Object.keys(row.values).sort());
      for (const [tag, v] of Object.entries(row.values)) expect(ev.values[tag], tag).toBe(Math.fround(v));
    });
  });

  it('a resumed run continues metrics.csv from its step; a new event file is added beside the first', async () => {
    const dir = join(work, 'resume');
    const base = {
      method: 'vicreg' as const,
      data: { train: data, normalization: 'emp-ssl' as const },
      projector: { hiddenDims: [64], outputDim: 32 },
      augmentation: [{ size: 16 }],
      batchSize: 16,
      logEvery: 1,
      checkpoint: { dir },
      seed: 3,
    };
    const first = await train({ ...base, epochs: 2, maxSteps: 2 });
    await new Promise((res) => setTimeout(res, 1100)); // event files are named by the second
    const second = await train({ ...base, epochs: 2, resume: first.checkpoint });
    const steps = readMetricsCsv(second.metricsCsv)
      .rows.filter((row) => 'train/loss' in row.values)
      .map((row) => row.step);
    expect(steps).toEqual([1, 2, 3, 4]);
    expect(readdirSync(dir).filter((f) => f.startsWith('events.out.tfevents.'))).toHaveLength(2);
    // The statistics the run recorded by name (args.json data.normalization 'emp-ssl') are what loading reports.
    const { loadCheckpoint } = await import('../lib/checkpoint/load.js');
    const loaded = await loadCheckpoint(second.checkpoint);
    expect(loaded.info.normalization).toEqual({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    loaded.dispose();
  });
});
