// npm run bench: every side-by-side benchmark in turn (each prints torch-ssl vs PyTorch and the ratio).
// `npm run bench -- forward losses` runs a subset.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { root } from './common.mjs';

const all = ['forward', 'losses', 'optim', 'train', 'cold-start', 'extract', 'knn', 'distributed'];
const picked = process.argv.slice(2).length > 0 ? process.argv.slice(2) : all;
for (const name of picked) {
  if (!all.includes(name)) throw new Error(`unknown benchmark ${name} (known: ${all.join(', ')})`);
  execFileSync(process.execPath, [join(root, 'bench', `${name}.mjs`)], { stdio: 'inherit' });
}
