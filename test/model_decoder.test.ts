import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { manifestTensors, SyntheticCheckpoint, type TensorSpec } from '../src/io/synthetic_checkpoint.js';
import { Linear } from '../src/models/common/modeling_wuerstchen_common.js';
import { decoderComponent } from '../src/models/stage_b/decoder_component.js';
import {
  parseWuerstchenDiffNeXtConfig,
  ResBlockStageB,
  WuerstchenDiffNeXt,
  type WuerstchenDiffNeXtConfig,
} from '../src/models/stage_b/modeling_wuerstchen_diffnext.js';
import { Capture } from '../src/nn/capture.js';
import type { NamedTensor } from '../src/nn/forward_component.js';
import { WeightLoader } from '../src/nn/weight_scope.js';
import { scoreWindowShape } from '../src/ops/attention.js';
import { deviceTraits } from '../src/ops/device_traits.js';
import { interpolateBicubicAA } from '../src/ops/interpolate.js';
import { openFileSource } from '../src/platform/file.js';
import type { Runtime } from '../src/runtime/device.js';
import type { DType } from '../src/runtime/dtype.js';
import { expectClose, type Tolerance } from './helpers/compare.js';
import {
  batchSlice,
  expectAllMatchGolden,
  expectNmseCosine,
  readGoldenIo,
  readHostTensors,
  runForward,
  type GoldenIo,
  type NmseCosineBounds,
} from './helpers/golden_io.js';
import { getRuntime } from './helpers/gpu.js';
import { nchwToNhwc } from './helpers/layout.js';

// Goldens: ../shared/golden/io/decoder.safetensors (diffusers v0.21.0 WuerstchenDiffNeXt(**config)(x, r, effnet,
// clip), return_noise=True, eps=1e-3; batch 2, latent 32×64, effnet 3×6, so the bicubic-antialiased effnet
// injection up-samples to levels 1–2 (8×16, 4×8) and down-samples to level 3 (2×4)), the tiny model of
// ../shared/golden/models/decoder, the full-size manifest ../shared/golden/manifests/decoder.json and the
// released warp-ai/wuerstchen decoder/config.json.
const fixture = (path: string) => fileURLToPath(new URL(`./fixtures/${path}`, import.meta.url));

// README §2: io/* atol 1e-5 rtol 1e-4 (scale-aware).
const IO: Tolerance = { atol: 1e-5, rtol: 1e-4 };
// STYLE.md, full model forward with f16 storage and f32 arithmetic. Measured on the tiny decoder:
// worst NMSE 1.5e-6, worst cosine 0.9999993 over the output and all 88 captured activations.
const F16: NmseCosineBounds = { maxNmse: 1e-3, minCosine: 0.999 };
/** Largest finite f16: a sum of squares above it overflows where a GRN reduces in f16. */
const F16_MAX = 65504;

function expectFinite(values: ArrayLike<number>, what: string): void {
  const bad = Array.prototype.findIndex.call(values, (v: number) => !Number.isFinite(v));
  expect(bad, `${what}: first non-finite value at`).toBe(-1);
}

/** Runs the `decoder` component (the CLI's code path), with or without a capture. */
function runComponent(rt: Runtime, inputs: Map<string, NamedTensor>, dtype: DType, capture: boolean) {
  return runForward(decoderComponent, { rt, modelDir: fixture('models/decoder'), dtype, inputs }, capture);
}

let rt: Runtime;
let golden: GoldenIo;
beforeAll(async () => {
  rt = await getRuntime();
  golden = await readGoldenIo(fixture('io/decoder.safetensors'));
});

describe('WuerstchenDiffNeXt (tiny decoder) against io/decoder.safetensors', () => {
  it('the golden holds the output and 88 captured activations, 9 of them x_skip arguments, 6 effnet injections (all checked below)', () => {
    const acts = [...golden.expected.keys()].filter((k) => k.startsWith('act.'));
    expect(acts).toHaveLength(88);
    expect(acts.filter((k) => k.endsWith('.in.x_skip'))).toHaveLength(9);
    expect([...golden.expected.keys()].filter((k) => !k.startsWith('act.'))).toEqual(['out']);
    // The 3×6 effnet is up-sampled for levels 1 and 2 and down-sampled for level 3, on both paths.
    expect(golden.inputs.get('in.effnet')!.shape).toEqual([2, 16, 3, 6]);
    const levels = [1, 2, 3, 4, 5, 6].map((k) => golden.expected.get(`act.effnet_mappers.${k}.out`)!.shape.slice(2));
    expect(levels).toEqual([[8, 16], [4, 8], [2, 4], [2, 4], [4, 8], [8, 16]]);
  });

  it('f32 with capture: the output and every captured activation within the io tolerances', async () => {
    const outputs = await runComponent(rt, golden.inputs, 'f32', true);
    expectAllMatchGolden(outputs, golden.expected, (got, want, key) => expectClose(got, want, IO, `f32 ${key}`));
  });

  it('f32 without capture (GELU and residuals fused into the GEMMs): the output', async () => {
    const outputs = await runComponent(rt, golden.inputs, 'f32', false);
    expect([...outputs.keys()]).toEqual(['out']);
    expectClose(outputs.get('out')!.data, golden.expected.get('out')!.data, IO, 'fused out');
  });

  it(`f16 with capture: the output and every captured activation at NMSE ≤ ${F16.maxNmse}, cosine ≥ ${F16.minCosine}`, async () => {
    expect(rt.hasF16, 'the adapter stores f16 tensors as f16').toBe(true);
    const outputs = await runComponent(rt, golden.inputs, 'f16', true);
    expectAllMatchGolden(outputs, golden.expected, (got, want, key) => expectNmseCosine(got, want, F16, `f16 ${key}`));
  });

  it.each(['f32', 'f16'] as const)('batch 1 (%s): the second sample alone gives its half of the batch-2 output', async (dtype) => {
    const inputs = new Map([...golden.inputs].map(([k, t]): [string, NamedTensor] => [k, batchSlice(t, 1, 1)]));
    const got = (await runComponent(rt, inputs, dtype, false)).get('out')!;
    const want = batchSlice(golden.expected.get('out')!, 1, 1);
    expect(got.shape).toEqual(want.shape);
    if (dtype === 'f32') expectClose(got.data, want.data, IO, 'batch 1 out');
    else expectNmseCosine(got.data, want.data, F16, 'batch 1 out');
  });

  it('allocates attention scores only as its attention kernel bounds them: none (flash) or one window (gemm)', async () => {
    // down_blocks.1.3 attends 8×16 = 128 queries to 128 + 77 keys with 2 heads, batch 2.
    const scores = 2 * 2 * 128 * 205;
    const window = scoreWindowShape(2, 2, 128, 205, 4).reduce((a, b) => a * b, 1);
    const empty = vi.spyOn(rt, 'empty');
    try {
      await runComponent(rt, golden.inputs, 'f32', false);
      const largest = Math.max(...empty.mock.calls.map(([shape]) => shape.reduce((a, b) => a * b, 1)));
      if (deviceTraits(rt).cpuEmulated) expect(largest).toBe(window);
      else expect(largest).toBeLessThan(scores);
    } finally {
      empty.mockRestore();
    }
  });
});

describe('f16 storage with f32 accumulation stays finite on inputs of real scale', () => {
  // Real scale: Stage C hands Stage B `latents * 42 − 1` (|values| up to ~150), the decoder's text
  // embedding is CLIP ViT-H's last hidden state (|values| of tens), x is the N(0, 1) noise of the first
  // step. Here: effnet = 42·in.effnet − 1 (max |value| 121), clip = 10·in.clip, x = in.x.
  const scaled = () =>
    new Map<string, NamedTensor>([
      ['in.x', golden.inputs.get('in.x')!],
      ['in.r', golden.inputs.get('in.r')!],
      ['in.effnet', { ...golden.inputs.get('in.effnet')!, data: golden.inputs.get('in.effnet')!.data.map((v) => 42 * v - 1) }],
      ['in.clip', { ...golden.inputs.get('in.clip')!, data: golden.inputs.get('in.clip')!.data.map((v) => 10 * v) }],
    ]);

  /** The largest Σ over positions of x² per (batch, channel) of an NHWC-captured [B, H, W, C] tensor: what a GRN reduces. */
  function largestSumOfSquares({ shape, data }: NamedTensor): number {
    const [b, h, w, c] = shape;
    let largest = 0;
    for (let n = 0; n < b; n++) {
      for (let ch = 0; ch < c; ch++) {
        let sum = 0;
        for (let p = 0; p < h * w; p++) sum += data[(n * h * w + p) * c + ch] ** 2;
        largest = Math.max(largest, sum);
      }
    }
    return largest;
  }

  it('tiny decoder: f16 matches its own f32 run, although a GRN sum of squares exceeds the f16 range', async () => {
    const inputs = scaled();
    const f32 = await runComponent(rt, inputs, 'f32', true);
    const f16 = await runComponent(rt, inputs, 'f16', true);
    const grnInputs = [...f32.keys()].filter((k) => k.endsWith('.channelwise.1.out'));
    expect(Math.max(...grnInputs.map((k) => largestSumOfSquares(f32.get(k)!)))).toBeGreaterThan(F16_MAX);
    for (const [key, want] of f32) {
      expectFinite(want.data, `f32 ${key}`);
      expectFinite(f16.get(key)!.data, `f16 ${key}`);
      expectNmseCosine(f16.get(key)!.data, want.data, F16, `f16 vs f32 ${key}`);
    }
  });

  it('a random-weight down_blocks.3.1 of the real width (1280 + 1024 skip channels) at its 8×8 size of a 512² image', async () => {
    const manifest = JSON.parse(await readFile(fixture('manifests/decoder.json'), 'utf8')) as unknown;
    const specs = manifestTensors(manifest).filter((s) => /^(down_blocks\.3\.1|effnet_mappers\.3)\./.test(s.name));
    const reader = new SyntheticCheckpoint(specs, { dtype: 'F32', name: 'decoder.json' });
    const x = Float32Array.from({ length: 8 * 8 * 1280 }, (_, i) => 3 * Math.sin(0.37 * i));
    const effnet = nchwToNhwc(golden.inputs.get('in.effnet')!.data.subarray(0, 16 * 3 * 6).map((v) => 42 * v - 1), [1, 16, 3, 6]);
    const run = async (dtype: DType) => {
      const root = new WeightLoader(rt, reader, 'decoder.json', dtype).root();
      const block = await ResBlockStageB.load(root.pp('down_blocks').pp(3).pp(1), 1280, 1024, 3);
      const mapper = await Linear.loadConv1x1(root.pp('effnet_mappers').pp(3), 16, 1024);
      const capture = new Capture(rt);
      await rt.scope(() => {
        const skip = mapper.forward(rt, interpolateBicubicAA(rt, rt.upload(effnet, [1, 3, 6, 16], dtype), 8, 8));
        capture.record('out', block.forward(rt, rt.upload(x, [1, 8, 8, 1280], dtype), skip, capture));
      });
      for (const t of [...block.parameters(), ...mapper.parameters()]) t.dispose();
      return capture.read();
    };
    const f32 = await run('f32');
    const f16 = await run('f16');
    expect(largestSumOfSquares(f32.get('act.down_blocks.3.1.channelwise.1.out')!)).toBeGreaterThan(F16_MAX);
    for (const key of ['act.down_blocks.3.1.channelwise.2.out', 'act.out.out']) {
      expectFinite(f16.get(key)!.data, `f16 ${key}`);
      expectNmseCosine(f16.get(key)!.data, f32.get(key)!.data, F16, `f16 vs f32 ${key}`);
    }
  });
});

describe('wuerstchen forward decoder (CLI)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'decoder-forward-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes every golden tensor of io/decoder, captured activations and x_skip arguments included', async () => {
    const out = join(dir, 'out.safetensors');
    const code = await main(['forward', 'decoder', '--model', fixture('models/decoder'), '--inputs', fixture('io/decoder.safetensors'), '--out', out, '--capture']);
    expect(code).toBe(0);
    const written = await readHostTensors(out);
    expectAllMatchGolden(written, golden.expected, (got, want, key) => expectClose(got, want, IO, `CLI ${key}`));
  });
});

// ---- loading ----------------------------------------------------------------------------------

/** Loads `specs` as a checkpoint in dry-run mode: keys and shapes only, no data read or uploaded. */
async function dryRunLoad(specs: TensorSpec[], config: WuerstchenDiffNeXtConfig, dtype: DType = 'f32'): Promise<number> {
  const reader = new SyntheticCheckpoint(specs, { dtype: 'F32', name: 'diffusion_pytorch_model.safetensors' });
  const model = await WuerstchenDiffNeXt.fromReader(rt, reader, 'diffusion_pytorch_model.safetensors', config, { dtype, dryRun: true });
  model.dispose();
  return reader.tensors.size;
}

describe('full-size checkpoint (manifest) loads with every key used', () => {
  it('the released config parses to the manifest config, and all 990 tensors (1.05 B parameters) load in f32 and f16', async () => {
    const configPath = fixture('configs/wuerstchen_decoder.json');
    const config = parseWuerstchenDiffNeXtConfig(await readFile(configPath, 'utf8'), configPath);
    expect(config).toEqual({
      c_in: 4,
      c_out: 4,
      c_r: 64,
      patch_size: 2,
      c_cond: 1024,
      c_hidden: [320, 640, 1280, 1280],
      nhead: [-1, 10, 20, 20],
      blocks: [4, 4, 14, 4],
      level_config: ['CT', 'CTA', 'CTA', 'CTA'],
      inject_effnet: [false, true, true, true],
      effnet_embd: 16,
      clip_embd: 1024,
      kernel_size: 3,
      dropout: 0.1,
    });
    const manifest = JSON.parse(await readFile(fixture('manifests/decoder.json'), 'utf8')) as { config: unknown; parameter_count: number };
    expect(parseWuerstchenDiffNeXtConfig(JSON.stringify(manifest.config), 'manifest config')).toEqual(config);
    const specs = manifestTensors(manifest);
    expect(specs).toHaveLength(990);
    expect(specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0)).toBe(manifest.parameter_count);
    for (const dtype of ['f32', 'f16'] as const) expect(await dryRunLoad(specs, config, dtype)).toBe(990);
  });
});

describe('checkpoint errors', () => {
  let specs: TensorSpec[];
  let config: WuerstchenDiffNeXtConfig;
  beforeAll(async () => {
    const dir = fixture('models/decoder');
    config = parseWuerstchenDiffNeXtConfig(await readFile(`${dir}/config.json`, 'utf8'), 'config.json');
    const file = await SafetensorsFile.open(await openFileSource(`${dir}/diffusion_pytorch_model.safetensors`));
    specs = [...file.tensors.values()].map(({ name, shape }) => ({ name, shape }));
    await file.close();
  });

  it('the tiny checkpoint loads with all 210 keys used', async () => {
    expect(await dryRunLoad(specs, config)).toBe(210);
  });

  it('a missing key names the key and its expected shape', async () => {
    const without = specs.filter((s) => s.name !== 'up_blocks.1.0.channelwise.0.weight');
    await expect(dryRunLoad(without, config)).rejects.toThrow(
      "diffusion_pytorch_model.safetensors: missing tensor 'up_blocks.1.0.channelwise.0.weight' (expected shape [128, 96])",
    );
  });

  it('a mis-shaped key names the key and both shapes', async () => {
    const reshaped = specs.map((s) => (s.name === 'effnet_mappers.3.weight' ? { ...s, shape: [32, 16] } : s));
    await expect(dryRunLoad(reshaped, config)).rejects.toThrow(
      "diffusion_pytorch_model.safetensors: tensor 'effnet_mappers.3.weight' has shape [32, 16], expected [32, 16, 1, 1]",
    );
  });

  it('an unknown key (an effnet mapper where inject_effnet is false) is reported as unused', async () => {
    const extra = [...specs, { name: 'effnet_mappers.0.weight', shape: [32, 16, 1, 1] }];
    await expect(dryRunLoad(extra, config)).rejects.toThrow(
      "diffusion_pytorch_model.safetensors: 1 tensor(s) not used by the model: 'effnet_mappers.0.weight'",
    );
  });
});

describe('config and input errors', () => {
  it('config lists of different lengths, an unknown block type, heads that do not divide the width', () => {
    expect(() => parseWuerstchenDiffNeXtConfig('{"blocks": [1, 1, 1]}', 'config.json')).toThrow(
      'config.json: "blocks" must be a list of 4 entries like "c_hidden", got [1,1,1]',
    );
    expect(() => parseWuerstchenDiffNeXtConfig('{"level_config": ["CT", "CTA", "CTX", "CTA"]}', 'config.json')).toThrow(
      'config.json: "level_config" must be a non-empty list of strings of the block types C, T, A, got ["CT","CTA","CTX","CTA"]',
    );
    expect(() => parseWuerstchenDiffNeXtConfig('{"nhead": [-1, 10, 20, 30]}', 'config.json')).toThrow(
      'config.json: level 3 has attention blocks, but nhead 30 does not divide c_hidden 1280',
    );
  });

  it('a latent size the levels cannot halve evenly, and inputs of different dtypes', async () => {
    const model = await WuerstchenDiffNeXt.fromPretrained(rt, fixture('models/decoder'));
    const x = rt.upload(new Float32Array(4 * 24 * 40), [1, 4, 24, 40], 'f32');
    const x16 = rt.upload(new Float32Array(4 * 32 * 64), [1, 4, 32, 64], 'f16');
    const effnet = rt.upload(new Float32Array(16 * 3 * 6), [1, 16, 3, 6], 'f32');
    const clip = rt.upload(new Float32Array(77 * 32), [1, 77, 32], 'f32');
    try {
      await expect(model.forward(x, new Float32Array([0.5]), effnet, clip)).rejects.toThrow(
        'WuerstchenDiffNeXt: x is 24×40, but H and W must be multiples of 16 (patch_size × 2^(levels − 1))',
      );
      await expect(model.forward(x16, new Float32Array([0.5]), effnet, clip)).rejects.toThrow(
        'WuerstchenDiffNeXt: x is f16 but effnet is f32; they must match',
      );
    } finally {
      for (const t of [x, x16, effnet, clip]) t.dispose();
      model.dispose();
    }
  });
});
