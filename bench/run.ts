/**
 * `npm run bench [-- <suite> ...] [--full] [--dtype f32|f16] [--runs N]`: runs the benchmark suites
 * (ops, models and e2e by default), prints a Markdown table per suite and appends JSON lines with
 * the adapter description under bench/results/. Flags: see options.ts. Suites:
 *   ops     GEMM, attention, depthwise conv, LayerNorm, GRN on the models' real shapes
 *   models  per-component forward at real size with random weights (quick: fewer blocks)
 *   e2e     the tiny pipelines end to end, resident and in low-memory mode
 *   warmup  first-forward time with and without compiling the pipelines up front (on request)
 *   profile GPU time per kernel in each model, a few of its blocks (on request; needs timestamp-query)
 */
import { Runtime } from '../src/runtime/device.js';
import { parseBenchOptions, splitArgs, type BenchOptions } from './options.js';
import { appendResults, markdownTable, type BenchRow } from './report.js';

type Suite = (rt: Runtime, options: BenchOptions) => Promise<BenchRow[]>;

// Each suite lives in its own module and is loaded only when run.
const suites: Record<string, () => Promise<Suite>> = {
  ops: async () => (await import('./ops.js')).benchOps,
  models: async () => (await import('./models.js')).benchModels,
  e2e: async () => (await import('./e2e.js')).benchEndToEnd,
  warmup: async () => (await import('./warmup.js')).benchWarmup,
  profile: async () => (await import('./profile.js')).benchProfile,
};
// The diagnostic suites add minutes on a software GPU: `npm run bench` stays within about 10.
const DEFAULT_SUITES = ['ops', 'models', 'e2e'];

const { names: requested, flags } = splitArgs(process.argv.slice(2));
const options = parseBenchOptions(flags);
const names = requested.length ? requested : DEFAULT_SUITES;
const unknown = names.filter((n) => !suites[n]);
if (unknown.length) {
  console.error(`unknown bench suite(s): ${unknown.join(', ')} (available: ${Object.keys(suites).join(', ')})`);
  process.exit(2);
}

const rt = await Runtime.create();
console.log(`adapter: ${rt.adapterInfo.vendor} / ${rt.adapterInfo.architecture} / ${rt.adapterInfo.device || rt.adapterInfo.description}`);
console.log(`adapter features: ${[...rt.gpu.adapter.features].sort().join(', ')}`);
console.log(`${options.full ? 'full' : 'quick (--full for full-size models)'}, ${options.dtype} models, ${options.runs} timed run(s)`);
const context = { mode: options.full ? 'full' : 'quick', runtime: `node ${process.versions.node}` };
for (const name of names) {
  const started = performance.now();
  const suite = await suites[name]();
  const rows = await suite(rt, options);
  console.log(`\n## ${name} (${((performance.now() - started) / 1000).toFixed(0)} s)\n\n${markdownTable(rows)}`);
  // Appended per suite, so a later suite's failure keeps the earlier results.
  console.log(`\nresults appended to ${await appendResults(rt, rows, context)}`);
}
rt.destroy();
