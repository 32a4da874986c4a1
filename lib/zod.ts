/**
 * zod, loaded on first use. Importing it costs ~50 ms (95 modules, 60 of them its locales), which would otherwise land
 * on every `import 'torch-ssl'`, loading a checkpoint for features included (bench/cold-start), not only on what
 * validates a training config. One instance for the whole package: every schema here is built from this one.
 */
import { createRequire } from 'node:module';
import type { z as Z } from 'zod';

let cached: typeof Z | undefined;

export function zod(): typeof Z {
  cached ??= (createRequire(import.meta.url)('zod') as { z: typeof Z }).z;
  return cached;
}
