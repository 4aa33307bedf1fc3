/**
 * Full-size Stage C on the GPU without the 4 GB checkpoint: `npx tsx bench/prior_fullsize.ts
 * [--depth 32] [--size 24] [--batch 2] [--dtype f16] [--runs 2] [--manifest <prior.json>]`.
 *
 * Builds WuerstchenPrior (c 1536, 24 heads, `depth` × 3 blocks) from the real checkpoint's manifest
 * with synthetic random weights, uploaded tensor by tensor exactly as a real file would be, then
 * times forwards at `size`×`size` latents (batch 2 = classifier-free guidance) and reports the
 * buffer pool's peak. `--depth 1` runs the same code on a software GPU in seconds.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { manifestTensors, SyntheticCheckpoint } from '../src/io/synthetic_checkpoint.js';
import { WuerstchenPrior, type WuerstchenPriorConfig } from '../src/models/stage_c/modeling_wuerstchen_prior.js';
import { Runtime } from '../src/runtime/device.js';
import type { DType } from '../src/runtime/dtype.js';

interface Options {
  depth: number;
  size: number;
  batch: number;
  dtype: DType;
  runs: number;
  manifest: string;
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    depth: 32,
    size: 24,
    batch: 2,
    dtype: 'f16',
    runs: 2,
    manifest: fileURLToPath(new URL('../test/fixtures/manifests/prior.json', import.meta.url)),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--dtype') {
      if (value !== 'f32' && value !== 'f16') throw new Error(`--dtype must be f32 or f16, got ${value}`);
      options.dtype = value;
    } else if (flag === '--manifest') {
      options.manifest = value;
    } else if (flag === '--depth' || flag === '--size' || flag === '--batch' || flag === '--runs') {
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got ${value}`);
      options[flag.slice(2) as 'depth' | 'size' | 'batch' | 'runs'] = n;
    } else {
      throw new Error(`unknown option ${flag} (known: --depth --size --batch --dtype --runs --manifest)`);
    }
  }
  return options;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

const options = parseOptions(process.argv.slice(2));
const manifest = JSON.parse(await readFile(options.manifest, 'utf8')) as { config: WuerstchenPriorConfig };
if (options.depth > manifest.config.depth) throw new Error(`--depth ${options.depth} exceeds the manifest's ${manifest.config.depth}`);
const config = { ...manifest.config, depth: options.depth };
// Blocks come in (ResBlock, TimestepBlock, AttnBlock) triples: keep the first `depth` of them.
const tensors = manifestTensors(manifest).filter((t) => {
  const block = /^blocks\.(\d+)\./.exec(t.name);
  return !block || Number(block[1]) < 3 * options.depth;
});
const parameterCount = tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);

const rt = await Runtime.create();
console.log(`adapter: ${rt.adapterInfo.vendor} / ${rt.adapterInfo.architecture} / ${rt.adapterInfo.device || rt.adapterInfo.description}`);
console.log(
  `prior: c ${config.c}, depth ${config.depth} (${tensors.length} tensors, ${(parameterCount / 1e6).toFixed(1)} M parameters), ` +
    `${options.dtype} weights and activations, latents ${options.batch}×${config.c_in}×${options.size}×${options.size}`,
);

let start = performance.now();
const reader = new SyntheticCheckpoint(tensors, { dtype: 'F16', name: 'synthetic prior' });
const prior = await WuerstchenPrior.fromReader(rt, reader, 'synthetic prior', config, { dtype: options.dtype });
await rt.sync();
const loaded = rt.pool.stats();
console.log(`load: ${(performance.now() - start).toFixed(0)} ms, weights on the device ${mib(loaded.bytesAllocated)}`);

const { batch, size } = options;
const x = rt.upload(
  Float32Array.from({ length: batch * config.c_in * size * size }, (_, i) => Math.sin(i)),
  [batch, config.c_in, size, size],
  options.dtype,
  'x',
);
const c = rt.upload(
  Float32Array.from({ length: batch * 77 * config.c_cond }, (_, i) => Math.cos(i) * 0.5),
  [batch, 77, config.c_cond],
  options.dtype,
  'c',
);
const r = Float32Array.from({ length: batch }, (_, i) => 0.25 + 0.5 * i / Math.max(1, batch - 1));

for (let run = 1; run <= options.runs; run++) {
  start = performance.now();
  const out = await prior.forward(x, r, c);
  const values = await rt.read(out);
  const ms = performance.now() - start;
  out.dispose();
  const nonFinite = values.reduce((n, v) => n + (Number.isFinite(v) ? 0 : 1), 0);
  const stats = rt.pool.stats();
  console.log(
    `forward ${run}${run === 1 ? ' (compiles pipelines)' : ''}: ${ms.toFixed(0)} ms; pool peak ${mib(stats.peakBytesAllocated)} ` +
      `(activations ${mib(stats.peakBytesAllocated - loaded.bytesAllocated)} above the weights), ` +
      `${stats.created - loaded.created} buffers created so far; ${nonFinite} non-finite outputs`,
  );
}

x.dispose();
c.dispose();
prior.dispose();
rt.destroy();
