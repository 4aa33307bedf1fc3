import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { manifestTensors, SyntheticCheckpoint, type TensorSpec } from '../src/io/synthetic_checkpoint.js';
import { parseWuerstchenPriorConfig, WuerstchenPrior, type WuerstchenPriorConfig } from '../src/models/stage_c/modeling_wuerstchen_prior.js';
import { priorComponent } from '../src/models/stage_c/prior_component.js';
import type { NamedTensor } from '../src/nn/forward_component.js';
import { openFileSource } from '../src/platform/file.js';
import type { Runtime } from '../src/runtime/device.js';
import type { DType } from '../src/runtime/dtype.js';
import { expectClose, type Tolerance } from './helpers/compare.js';
import {
  batchSlice,
  expectMatchesGolden,
  expectNmseCosine,
  readGoldenIo,
  readHostTensors,
  runForward,
  type GoldenIo,
  type NmseCosineBounds,
} from './helpers/golden_io.js';
import { getRuntime } from './helpers/gpu.js';

// Goldens: ../shared/golden/io/prior.safetensors (diffusers v0.21.0 WuerstchenPrior(x, r, c), batch 2,
// latents 3×5, with the 43 act.* module outputs), the tiny model ../shared/golden/models/prior, the
// full-size manifest ../shared/golden/manifests/prior.json and the released warp-ai/wuerstchen-prior
// prior/config.json.
const fixture = (path: string) => fileURLToPath(new URL(`./fixtures/${path}`, import.meta.url));
const TINY = fixture('models/prior');

// README §2: io/* atol 1e-5, rtol 1e-4.
const IO: Tolerance = { atol: 1e-5, rtol: 1e-4 };
// f16 weights and f16 activations (f32 arithmetic): STYLE.md's per-block NMSE ≤ 1e-4 applied to every
// captured output and the result (measured worst 8.3e-7), cosine ≥ 0.999 (measured ≥ 0.9999995), and
// the ops/f16_* criterion atol 2e-3 + rtol 4e-3·max|ref| (measured ≤ 1.2e-3·max|ref|).
const F16_BOUNDS: NmseCosineBounds = { maxNmse: 1e-4, minCosine: 0.999 };
const F16: Tolerance = { atol: 2e-3, rtol: 4e-3 };

function sliceBatch(tensors: ReadonlyMap<string, NamedTensor>, n: number): Map<string, NamedTensor> {
  return new Map([...tensors].map(([k, t]) => [k, batchSlice(t, 0, n)]));
}

function expectMatches(actual: NamedTensor | undefined, expected: NamedTensor, dtype: DType, what: string): void {
  expectMatchesGolden(actual, expected, what, (got, want) => {
    if (dtype === 'f32') return expectClose(got, want, IO, what);
    expectClose(got, want, F16, what);
    expectNmseCosine(got, want, F16_BOUNDS, what);
  });
}

/** The `forward prior` component, as the CLI runs it, optionally with every activation captured. */
function runComponent(rt: Runtime, inputs: Map<string, NamedTensor>, dtype: DType, withCapture: boolean) {
  return runForward(priorComponent, { rt, modelDir: TINY, dtype, inputs }, withCapture);
}

let rt: Runtime;
let golden: GoldenIo;

beforeAll(async () => {
  rt = await getRuntime();
  golden = await readGoldenIo(fixture('io/prior.safetensors'));
});

describe('WuerstchenPrior (tiny) vs io/prior.safetensors', () => {
  it('has the 43 captured activations the harness must reproduce', () => {
    expect([...golden.expected.keys()].filter((k) => k.startsWith('act.'))).toHaveLength(43);
  });

  for (const dtype of ['f32', 'f16'] as const) {
    it(`${dtype}: output and every captured module output, batch 2, 3×5 latents`, async () => {
      const outputs = await runComponent(rt, golden.inputs, dtype, true);
      expect([...outputs.keys()].sort()).toEqual([...golden.expected.keys()].sort());
      for (const [name, expected] of golden.expected) expectMatches(outputs.get(name), expected, dtype, `${dtype} ${name}`);
    });

    it(`${dtype}: fused path (no capture), batch 1 sliced from the golden`, async () => {
      const [full, single] = await Promise.all([
        runComponent(rt, golden.inputs, dtype, false),
        runComponent(rt, sliceBatch(golden.inputs, 1), dtype, false),
      ]);
      expectMatches(full.get('out'), golden.expected.get('out')!, dtype, `${dtype} out (batch 2)`);
      expectMatches(single.get('out'), batchSlice(golden.expected.get('out')!, 0, 1), dtype, `${dtype} out (batch 1)`);
    });
  }

  it('f32: batch 1 reproduces the first batch entry of every captured activation', async () => {
    const outputs = await runComponent(rt, sliceBatch(golden.inputs, 1), 'f32', true);
    for (const [name, expected] of golden.expected) expectMatches(outputs.get(name), batchSlice(expected, 0, 1), 'f32', `batch 1 ${name}`);
  });

  it('runs through the CLI: wuerstchen forward prior --capture', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'prior-forward-'));
    try {
      const out = join(dir, 'out.safetensors');
      const code = await main(['forward', 'prior', '--model', TINY, '--inputs', fixture('io/prior.safetensors'), '--out', out, '--capture']);
      expect(code).toBe(0);
      const written = await readHostTensors(out);
      expect(written.size).toBe(44);
      for (const name of ['out', 'act.blocks.5.attention.out', 'act.out.1.out']) {
        expectMatches(written.get(name), golden.expected.get(name)!, 'f32', `cli ${name}`);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('returns every per-block temporary to the pool: a second forward allocates no new buffer', async () => {
    const prior = await WuerstchenPrior.fromPretrained(rt, TINY, { dtype: 'f32' });
    const x = rt.upload(golden.inputs.get('in.x')!.data, golden.inputs.get('in.x')!.shape, 'f32');
    const c = rt.upload(golden.inputs.get('in.c')!.data, golden.inputs.get('in.c')!.shape, 'f32');
    const r = golden.inputs.get('in.r')!.data;
    const forward = async () => {
      const out = await prior.forward(x, r, c);
      await rt.read(out);
      out.dispose();
      return rt.pool.stats();
    };
    try {
      const first = await forward();
      const second = await forward();
      expect(second.created, 'buffers created by the second forward').toBe(first.created);
      expect(second.live).toBe(first.live);
      expect(second.bytesAllocated).toBe(first.bytesAllocated);
    } finally {
      x.dispose();
      c.dispose();
      prior.dispose();
    }
  });

  it('allocates the same activation buffers at depth 24 and depth 32: blocks reuse them', async () => {
    const tiny = await SafetensorsFile.open(await openFileSource(join(TINY, 'diffusion_pytorch_model.safetensors')));
    const tinyConfig = parseWuerstchenPriorConfig(await readFile(join(TINY, 'config.json'), 'utf8'), 'config.json');
    // The tiny model's keys with its first (ResBlock, TimestepBlock, AttnBlock) triple repeated `depth` times.
    const specsAtDepth = (depth: number): TensorSpec[] =>
      [...tiny.tensors.values()].flatMap(({ name, shape }) => {
        const m = /^blocks\.(\d+)\.(.*)$/.exec(name);
        if (!m) return [{ name, shape }];
        const i = Number(m[1]);
        return i < 3 ? Array.from({ length: depth }, (_, d) => ({ name: `blocks.${3 * d + i}.${m[2]}`, shape })) : [];
      });
    const allocatedByForward = async (depth: number) => {
      const reader = new SyntheticCheckpoint(specsAtDepth(depth), { dtype: 'F32', name: `depth ${depth}` });
      const prior = await WuerstchenPrior.fromReader(rt, reader, `depth ${depth}`, { ...tinyConfig, depth });
      const x = rt.upload(new Float32Array(2 * 16 * 3 * 5).fill(0.5), [2, 16, 3, 5]);
      const c = rt.upload(new Float32Array(2 * 77 * 32).fill(0.1), [2, 77, 32]);
      try {
        await rt.sync();
        rt.trim();
        const before = rt.pool.stats();
        const out = await prior.forward(x, new Float32Array([0.3, 0.7]), c);
        await rt.read(out);
        out.dispose();
        const after = rt.pool.stats();
        return { buffers: after.created - before.created, bytes: after.bytesAllocated - before.bytesAllocated };
      } finally {
        x.dispose();
        c.dispose();
        prior.dispose();
      }
    };
    try {
      expect(await allocatedByForward(32)).toEqual(await allocatedByForward(24));
    } finally {
      await tiny.close();
    }
  });

  it('rejects inputs that do not fit the config', async () => {
    const prior = await WuerstchenPrior.fromPretrained(rt, TINY, { dtype: 'f32' });
    const wrongChannels = rt.empty([2, 15, 3, 5], 'f32');
    const x = rt.empty([2, 16, 3, 5], 'f32');
    const c = rt.empty([2, 77, 32], 'f32');
    try {
      await expect(prior.forward(wrongChannels, new Float32Array(2), c)).rejects.toThrow(
        'WuerstchenPrior: x must be [B, 16, H, W], got [2, 15, 3, 5]',
      );
      await expect(prior.forward(x, new Float32Array(1), c)).rejects.toThrow('WuerstchenPrior: r has 1 values for a batch of 2');
    } finally {
      for (const t of [wrongChannels, x, c]) t.dispose();
      prior.dispose();
    }
  });
});

describe('WuerstchenPrior config', () => {
  it('parses the released warp-ai/wuerstchen-prior prior/config.json (same as the manifest)', async () => {
    const path = fixture('manifests/prior_config.json');
    const config = parseWuerstchenPriorConfig(await readFile(path, 'utf8'), path);
    const manifest = JSON.parse(await readFile(fixture('manifests/prior.json'), 'utf8')) as { config: WuerstchenPriorConfig };
    expect(config).toEqual({ c_in: 16, c: 1536, c_cond: 1280, c_r: 64, depth: 32, nhead: 24, dropout: 0.1 });
    expect(config).toEqual(manifest.config);
  });

  it('fills missing keys with the WuerstchenPrior defaults and rejects bad values', () => {
    expect(parseWuerstchenPriorConfig('{"c": 64, "nhead": 4}', 'cfg.json')).toEqual({
      c_in: 16, c: 64, c_cond: 1024, c_r: 64, depth: 16, nhead: 4, dropout: 0.1,
    });
    expect(() => parseWuerstchenPriorConfig('{"depth": 0}', 'cfg.json')).toThrow('cfg.json: "depth" must be a positive integer, got 0');
    expect(() => parseWuerstchenPriorConfig('{"c": "64"}', 'cfg.json')).toThrow('cfg.json: "c" must be a positive integer, got "64"');
    expect(() => parseWuerstchenPriorConfig('{"_class_name": "WuerstchenDiffNeXt"}', 'cfg.json')).toThrow(
      'cfg.json: _class_name is "WuerstchenDiffNeXt", expected "WuerstchenPrior"',
    );
    expect(() => parseWuerstchenPriorConfig('[1]', 'cfg.json')).toThrow('cfg.json: expected a JSON object');
  });
});

describe('full-size WuerstchenPrior (manifests/prior.json: c 1536, 32 × 3 blocks, 24 heads)', () => {
  let specs: TensorSpec[];
  let config: WuerstchenPriorConfig;

  beforeAll(async () => {
    const manifest = JSON.parse(await readFile(fixture('manifests/prior.json'), 'utf8')) as { config: WuerstchenPriorConfig };
    specs = manifestTensors(manifest);
    config = manifest.config;
  });

  const load = (tensors: readonly TensorSpec[]) =>
    WuerstchenPrior.fromReader(rt, new SyntheticCheckpoint(tensors, { dtype: 'F32', name: 'prior.json' }), 'prior.json', config, {
      dtype: 'f16',
      dryRun: true,
    });

  it('loads with every one of the 648 keys used and every shape checked (dry run: no data uploaded)', async () => {
    expect(specs).toHaveLength(648);
    const before = rt.pool.stats().bytesAllocated;
    const prior = await load(specs);
    expect(prior.blocks).toHaveLength(96);
    expect(rt.pool.stats().bytesAllocated - before).toBeLessThan(1 << 20);
    prior.dispose();
  });

  it('names the key and both shapes when a tensor is missing, mis-shaped or unused', async () => {
    await expect(load(specs.filter((s) => s.name !== 'blocks.94.mapper.weight'))).rejects.toThrow(
      "prior.json: missing tensor 'blocks.94.mapper.weight' (expected shape [3072, 64])",
    );
    const misShaped = specs.map((s) => (s.name === 'blocks.2.attention.to_k.weight' ? { ...s, shape: [1536, 1280] } : s));
    await expect(load(misShaped)).rejects.toThrow(
      "prior.json: tensor 'blocks.2.attention.to_k.weight' has shape [1536, 1280], expected [1536, 1536]",
    );
    await expect(load([...specs, { name: 'blocks.96.mapper.weight', shape: [3072, 64] }])).rejects.toThrow(
      "prior.json: 1 tensor(s) not used by the model: 'blocks.96.mapper.weight'",
    );
  });
});
