/**
 * One self-contained HTML page for a training run (`torch-ssl report RUN_DIR`): the curves of metrics.csv
 * (uPlot, inlined: no network), the run's config (args.json), throughput and timing figures, and every PNG in
 * the run folder (heatmaps, patch-kNN grids made for the run), embedded as data URIs.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { ioFailure, writeFileAtomically } from '../io.js';
import { TorchSslError } from '../errors.js';
import { METRICS_CSV, readMetricsCsv, type MetricsRow } from './run-log.js';

export interface ReportOptions {
  out: string;
  /** Page title (default: the run's name from args.json, else the folder's name). */
  title?: string;
}

export interface ReportResult {
  out: string;
  bytes: number;
  /** The charts drawn, by title. */
  charts: string[];
  /** The PNG files embedded. */
  pictures: string[];
  steps: number;
}

interface Chart {
  title: string;
  yLabel: string;
  series: string[];
}

/** Which metrics go together on one chart; a chart appears only when the run logged one of its series. */
const CHARTS: Chart[] = [
  { title: 'SSL loss', yLabel: 'loss', series: ['train/loss', 'train/loss_epoch'] },
  { title: 'Loss terms', yLabel: 'value', series: [] /* every other train/<term> */ },
  { title: 'Online kNN (held-out set)', yLabel: 'accuracy (%)', series: ['knn/top1', 'knn/top5'] },
  { title: 'Learning rate', yLabel: 'lr', series: ['train/lr'] },
  { title: 'Throughput', yLabel: 'images / s', series: ['perf/images_per_sec'] },
  { title: 'Time per step', yLabel: 'ms', series: ['perf/step_ms', 'perf/augment_ms', 'perf/wait_ms'] },
  { title: 'Online classifier loss', yLabel: 'loss', series: ['train/class_loss'] },
  { title: 'Loss scale', yLabel: 'scale', series: ['train/grad_scale'] },
];
const NAMED = new Set(CHARTS.flatMap((c) => c.series));

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
/** JSON safe inside <script>: no "</script", no HTML comment openers, no U+2028/2029. */
const scriptJson = (v: unknown) =>
  JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

function uplotAssets(): { js: string; css: string } {
  const require = createRequire(import.meta.url);
  const js = require.resolve('uplot/dist/uPlot.iife.min.js');
  return { js: readFileSync(js, 'utf8'), css: readFileSync(join(js, '..', 'uPlot.min.css'), 'utf8') };
}

function mean(rows: MetricsRow[], key: string): number | null {
  const v = rows.map((r) => r.values[key]).filter((x): x is number => x !== undefined);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

/** The page's own style, after uPlot's. */
const PAGE_CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
table.facts td{padding:2px 12px 2px 0;vertical-align:top}table.facts td:first-child{color:#666}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{flex:0 0 520px}.chart h3{font-size:14px;margin:4px 0}
pre{background:#f6f6f6;padding:10px;overflow:auto;max-height:420px;font-size:12px}
figure{display:inline-block;margin:0 16px 16px 0;vertical-align:top}figure img{max-width:100%;image-rendering:pixelated;border:1px solid #ddd}
figcaption{font-size:12px;color:#555}.muted{color:#777}`;

/** Draws one uPlot chart per entry of the page's #chart-data, in the browser. */
const DRAW_CHARTS_JS = `(function () {
  var charts = JSON.parse(document.getElementById('chart-data').textContent);
  var colours = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
  var root = document.getElementById('charts');
  charts.forEach(function (c, i) {
    var box = document.createElement('div');
    box.className = 'chart';
    box.id = 'chart-' + i;
    var h = document.createElement('h3');
    h.textContent = c.title;
    box.appendChild(h);
    root.appendChild(box);
    var series = [{ label: 'step' }].concat(c.series.map(function (s, j) {
      return { label: s, stroke: colours[j % colours.length], width: 1.5, spanGaps: true, points: { show: c.data[0].length < 60 } };
    }));
    new uPlot({ width: 520, height: 260, series: series, scales: { x: { time: false } },
      axes: [{ label: 'global step' }, { label: c.yLabel, size: 60 }] }, c.data, box);
  });
  document.body.setAttribute('data-charts-drawn', String(charts.length));
})();`;

/** The run folder's files, sorted; refused unless it is a folder holding metrics.csv. */
function listRunFolder(runDir: string): { entries: string[]; csvPath: string } {
  let entries: string[];
  try {
    if (!statSync(runDir).isDirectory()) throw ioFailure(runDir, `${runDir} is a file; a report needs the run's folder (where train wrote its checkpoints)`);
    entries = readdirSync(runDir).sort();
  } catch (err) {
    if (err instanceof TorchSslError) throw err;
    throw ioFailure(runDir, `${runDir}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : (err as Error).message}`, { cause: err });
  }
  const csvPath = join(runDir, METRICS_CSV);
  if (!entries.includes(METRICS_CSV)) {
    throw ioFailure(csvPath, `${runDir} has no ${METRICS_CSV}: it is not a torch-ssl training run folder (train writes metrics.csv next to its checkpoints)`);
  }
  return { entries, csvPath };
}

/** The run's args.json, or null when it has none or it does not parse. */
function readRunArgs(runDir: string, entries: string[]): Record<string, unknown> | null {
  if (!entries.includes('args.json')) return null;
  try {
    return JSON.parse(readFileSync(join(runDir, 'args.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

interface ChartData {
  title: string;
  yLabel: string;
  series: string[];
  /** uPlot's columns: the global steps, then one array per series. */
  data: (number | null)[][];
}

/** The charts the run logged values for: x = global step; one uPlot data array per chart, null where a row lacks the series. */
function chartData(columns: string[], rows: MetricsRow[]): ChartData[] {
  const terms = columns.filter((c) => c.startsWith('train/') && !NAMED.has(c));
  const charts = CHARTS.map((c) => ({ ...c, series: (c.series.length ? c.series : terms).filter((s) => columns.includes(s)) })).filter(
    (c) => c.series.length > 0,
  );
  return charts.map((c) => {
    const rs = rows.filter((r) => c.series.some((s) => s in r.values));
    return { title: c.title, yLabel: c.yLabel, series: c.series, data: [rs.map((r) => r.step), ...c.series.map((s) => rs.map((r) => r.values[s] ?? null))] };
  });
}

/** What args.json says of the run: method, backbone, data, batch size, lr, precision, device. */
function configFacts(args: Record<string, unknown> | null): [string, string][] {
  const facts: [string, string][] = [];
  const cfg = args as {
    method?: string;
    backbone?: { name?: string; depth?: number };
    data?: { dataset?: string; train?: string };
    batchSize?: number;
    epochs?: number;
    precision?: string;
    optimizer?: { lr?: number };
    device?: string;
  } | null;
  if (cfg) {
    facts.push(
      ['method', String(cfg.method ?? '?')],
      ['backbone', String(cfg.backbone?.name ?? cfg.backbone?.depth ?? '?')],
      ['data', `${cfg.data?.dataset ?? '?'} (${cfg.data?.train ?? '?'})`],
    );
    facts.push(
      ['batch size × epochs', `${cfg.batchSize ?? '?'} × ${cfg.epochs ?? '?'}`],
      ['base lr', String(cfg.optimizer?.lr ?? '?')],
      ['precision', String(cfg.precision ?? '?')],
      ['device', String(cfg.device ?? '?')],
    );
  }
  return facts;
}

/** What metrics.csv says of the run: steps, wall time, mean throughput and step times, the online kNN's course. */
function logFacts(rows: MetricsRow[], stepRows: MetricsRow[]): [string, string][] {
  const facts: [string, string][] = [];
  const knn = rows.filter((r) => 'knn/top1' in r.values);
  if (rows.length > 0) {
    const last = stepRows.at(-1);
    facts.push(['steps logged', `${stepRows.length} (last global step ${last?.step ?? '?'}, epoch ${last?.epoch ?? '?'})`]);
    facts.push(['wall time', `${(rows.at(-1)!.wall_time - rows[0]!.wall_time).toFixed(1)} s from the first to the last logged value`]);
  }
  const fmt = (v: number | null, digits: number, unit = '') => (v === null ? '—' : `${v.toFixed(digits)}${unit}`);
  facts.push(['images / s (mean)', fmt(mean(stepRows, 'perf/images_per_sec'), 1)]);
  facts.push([
    'per step: compute / augment / wait',
    `${fmt(mean(stepRows, 'perf/step_ms'), 1, ' ms')} / ${fmt(mean(stepRows, 'perf/augment_ms'), 1, ' ms')} / ${fmt(mean(stepRows, 'perf/wait_ms'), 1, ' ms')}`,
  ]);
  if (knn.length > 0)
    facts.push(['online kNN top-1: first → last', `${knn[0]!.values['knn/top1']!.toFixed(2)} % → ${knn.at(-1)!.values['knn/top1']!.toFixed(2)} %`]);
  return facts;
}

interface ReportPage {
  title: string;
  runDir: string;
  rowCount: number;
  facts: [string, string][];
  charts: ChartData[];
  images: { name: string; uri: string }[];
  args: Record<string, unknown> | null;
}

/** The HTML page, with uPlot and the chart data inlined. */
function renderPage({ title, runDir, rowCount, facts, charts, images, args }: ReportPage): string {
  const { js, css } = uplotAssets();
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} — torch-ssl report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${css}
${PAGE_CSS}</style></head>
<body>
<h1>${escapeHtml(title)}</h1>
<div class="muted">torch-ssl training report · ${escapeHtml(runDir)} · ${rowCount} logged rows</div>
<h2>Run</h2>
<table class="facts">${facts.map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(v)}</td></tr>`).join('')}</table>
<h2>Curves</h2>
<div class="charts" id="charts">${charts.length === 0 ? '<p class="muted">metrics.csv has no values yet.</p>' : ''}</div>
${images.length ? `<h2>Pictures</h2>${images.map((i) => `<figure><img alt="${escapeHtml(i.name)}" src="${i.uri}"><figcaption>${escapeHtml(i.name)}</figcaption></figure>`).join('\n')}` : ''}
<h2>Config (args.json)</h2>
<pre>${args ? escapeHtml(JSON.stringify(args, null, 2)) : '<span class="muted">no args.json in the folder</span>'}</pre>
<script>${js}</script>
<script type="application/json" id="chart-data">${scriptJson(charts)}</script>
<script>
${DRAW_CHARTS_JS}
</script>
</body></html>
`;
}

/** Writes the report page of the training run in `runDir` to `opts.out` (atomically). */
export async function writeReport(runDir: string, opts: ReportOptions): Promise<ReportResult> {
  const { entries, csvPath } = listRunFolder(runDir);
  const { columns, rows } = readMetricsCsv(csvPath);
  const args = readRunArgs(runDir, entries);
  const title = opts.title ?? (typeof args?.name === 'string' ? args.name : basename(runDir));
  const charts = chartData(columns, rows);
  const pictures = entries.filter((f) => f.toLowerCase().endsWith('.png'));
  const stepRows = rows.filter((r) => 'train/loss' in r.values);
  const facts = [...configFacts(args), ...logFacts(rows, stepRows)];
  const images = pictures.map((f) => ({ name: f, uri: `data:image/png;base64,${readFileSync(join(runDir, f)).toString('base64')}` }));
  const bytes = Buffer.from(renderPage({ title, runDir, rowCount: rows.length, facts, charts, images, args }), 'utf8');
  await writeFileAtomically(opts.out, bytes);
  return { out: opts.out, bytes: bytes.length, charts: charts.map((c) => c.title), pictures, steps: stepRows.length };
}
