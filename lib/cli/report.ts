/** `torch-ssl report RUN_DIR --out report.html`: one self-contained HTML page for a training run. */
import type { Command } from 'commander';
import { writeReport } from '../viz/report.js';
import { outputFile } from './flags.js';
import { given, option, withOptions, type ParsedOptions } from './cli-option.js';
import { JSON_SUMMARY } from './options.js';

const OUT = option('--out <file>', 'the HTML file to write', { required: true });
const TITLE = option('--title <text>', "page title (default: the run's name)");

export function register(program: Command): void {
  const cmd = program
    .command('report')
    .description('one self-contained HTML page for a training run: curves, config, throughput and its pictures')
    .argument('<run-dir>', "the run's folder (config.checkpoint.dir: metrics.csv, args.json, checkpoints, PNGs)");
  withOptions(cmd, [OUT, TITLE, JSON_SUMMARY]).action(async (runDir: string, o: ParsedOptions) => {
    const out = await outputFile('--out', OUT.read(o));
    const r = await writeReport(runDir, { out, ...given({ title: TITLE.read(o) }) });
    console.log(`wrote ${r.out} (${(r.bytes / 1024).toFixed(0)} KiB): ${r.charts.length} charts over ${r.steps} logged steps, ${r.pictures.length} pictures`);
    if (JSON_SUMMARY.read(o)) console.log(JSON.stringify(r));
  });
}
