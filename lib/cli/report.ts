/** `torch-ssl report RUN_DIR --out report.html`: one self-contained HTML page for a training run. */
import type { Command } from 'commander';
import { writeReport } from '../viz/report.js';
import { outputFile } from './flags.js';

export function register(program: Command): void {
  program
    .command('report')
    .description('one self-contained HTML page for a training run: curves, config, throughput and its pictures')
    .argument('<run-dir>', "the run's folder (config.checkpoint.dir: metrics.csv, args.json, checkpoints, PNGs)")
    .requiredOption('--out <file>', 'the HTML file to write')
    .option('--title <text>', "page title (default: the run's name)")
    .option('--json', 'print a JSON summary as the last stdout line')
    .action(async (runDir: string, o: Record<string, string | boolean | undefined>) => {
      const out = await outputFile('--out', o.out as string);
      const r = await writeReport(runDir, { out, ...(typeof o.title === 'string' && { title: o.title }) });
      console.log(`wrote ${r.out} (${(r.bytes / 1024).toFixed(0)} KiB): ${r.charts.length} charts over ${r.steps} logged steps, ${r.pictures.length} pictures`);
      if (o.json) console.log(JSON.stringify(r));
    });
}
