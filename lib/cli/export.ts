/**
 * `torch-ssl export --checkpoint X --out Y.pth|Y.safetensors`: loads X strictly (any era / format
 * loadCheckpoint reads) and writes backbone.* / projector.* / classifier.* as a `.pth` that
 * `torch.load(path, weights_only=True)` reads, or as `.safetensors`. Atomic: a failure leaves no file.
 */
import type { Command } from 'commander';
import { loadCheckpoint } from '../checkpoint/load.js';
import { exportCheckpoint, exportFormatFor, type ExportFormat } from '../checkpoint/export.js';
import { oneOf, outputFile } from './flags.js';

export function register(program: Command): void {
  program
    .command('export')
    .description('export a checkpoint as a torch.load(weights_only=True) .pth or .safetensors')
    .requiredOption('--checkpoint <file>', 'a solo-learn .ckpt, torchvision / plain .pth, or torch-ssl file')
    .requiredOption('--out <file>', 'output: .pth (torch.save zip) or .safetensors')
    .option('--format <format>', 'pth | safetensors (default: from the --out extension)')
    .option('--args-json <file>', "solo-learn's args.json (default: args.json beside the checkpoint, if present)")
    .option('--backbone-only', 'export the backbone alone')
    .option('--no-strict', 'load what matches (missing / unexpected keys are listed, not fatal)')
    .action(async (opts: { checkpoint: string; out: string; format?: string; argsJson?: string; backboneOnly?: boolean; strict: boolean }) => {
      if (opts.format !== undefined) oneOf('--format', opts.format, ['pth', 'safetensors']);
      // Refuse a bad --out before spending time loading.
      const format = exportFormatFor(opts.out, opts.format as ExportFormat | undefined);
      await outputFile('--out', opts.out);
      const loaded = await loadCheckpoint(opts.checkpoint, {
        strict: opts.strict,
        heads: !opts.backboneOnly,
        ...(opts.argsJson !== undefined ? { argsJson: opts.argsJson } : {}),
      });
      try {
        const names = await exportCheckpoint(opts.out, loaded, { format });
        const mods = ['backbone', 'projector', 'classifier']
          .map((m) => [m, names.filter((n) => n.startsWith(`${m}.`)).length] as const)
          .filter(([, n]) => n > 0);
        process.stdout.write(
          `wrote ${opts.out}: ${names.length} tensors (${mods.map(([m, n]) => `${m} ${n}`).join(', ')}) from ${loaded.info.format} ResNet-${loaded.backbone.depth} (${loaded.backbone.stem} stem)\n`,
        );
        for (const w of loaded.info.warnings) process.stderr.write(`warning: ${w}\n`);
        if (loaded.missing.length) process.stderr.write(`warning: missing keys kept their initial values: ${loaded.missing.join(', ')}\n`);
        if (loaded.unexpected.length) process.stderr.write(`warning: unexpected keys skipped: ${loaded.unexpected.join(', ')}\n`);
      } finally {
        loaded.dispose();
      }
    });
}
