// Runs `torch-ssl extract …` from the compiled dist (the CLI's extract command, whatever else is wired),
// so bench/extract.mjs can time the whole process.
import { Command } from 'commander';
import { lib, root } from './common.mjs';

await lib(); // fails with a clear message when dist/ is missing
const { register } = await import(`${root}/dist/cli/extract.js`);
const { setNumThreads } = await import(`${root}/dist/index.js`);
const threads = Number.parseInt(process.env.BENCH_THREADS ?? '', 10);
if (threads > 0) setNumThreads(threads);
const program = new Command();
register(program);
await program.parseAsync(process.argv);
