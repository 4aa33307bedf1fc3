import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';
import { decodePng, encodePng } from '../src/io/png.js';
import { encodeSafetensors, openSafetensors, SafetensorsFile, writeSafetensors, type TensorToWrite } from '../src/io/safetensors.js';
import { MixingResidualBlock, PaellaVQModel } from '../src/models/vqgan/modeling_paella_vq_model.js';
import { channelLevels, parsePaellaVQConfig } from '../src/models/vqgan/configuration_paella_vq_model.js';
import { vqganDecodeComponent, vqganEncodeComponent, vqganQuantizeComponent } from '../src/models/vqgan/vqgan_components.js';
import type { NamedTensor } from '../src/nn/forward_component.js';
import { WeightLoader } from '../src/nn/weight_scope.js';
import { memorySource } from '../src/platform/file.js';
import type { Runtime } from '../src/runtime/device.js';
import type { DType } from '../src/runtime/dtype.js';
import { expectClose } from './helpers/compare.js';
import { expectAllMatchGolden, expectNmseCosine, readHostTensors, runForward, type NmseCosineBounds } from './helpers/golden_io.js';
import { getRuntime } from './helpers/gpu.js';

const FIXTURES = new URL('./fixtures/', import.meta.url).pathname;
const MODEL_DIR = `${FIXTURES}models/vqgan`;
const CHECKPOINT = `${MODEL_DIR}/diffusion_pytorch_model.safetensors`;
const IO_FILE = `${FIXTURES}io/vqgan.safetensors`;
const MANIFEST = `${FIXTURES}manifests/vqgan.json`;

/** README §2, io/*: max|a − ref| ≤ atol + rtol · max|ref|. */
const IO_TOL = { atol: 1e-5, rtol: 1e-4 };
/** README §2, the f16 criterion (ops/f16_*), applied per tensor to the f16 model's outputs and activations. */
const F16_TOL = { atol: 2e-3, rtol: 4e-3 };
/** STYLE.md, full model forward with f16 storage: NMSE ≤ 1e-3, cosine ≥ 0.999 (measured: NMSE ≤ 1e-6). */
const F16_BOUNDS: NmseCosineBounds = { maxNmse: 1e-3, minCosine: 0.999 };

async function runAll(rt: Runtime, golden: ReadonlyMap<string, NamedTensor>, dtype: DType, withCapture: boolean) {
  const out = new Map<string, NamedTensor>();
  const ctx = { rt, modelDir: MODEL_DIR, dtype, inputs: golden };
  for (const component of [vqganEncodeComponent, vqganQuantizeComponent, vqganDecodeComponent]) {
    for (const [name, t] of await runForward(component, ctx, withCapture)) out.set(name, t);
  }
  return out;
}

/** erf in f64: Taylor series below 2.5, the erfc continued fraction (Lentz) above. */
function erf64(x: number): number {
  const a = Math.abs(x);
  let r: number;
  if (a < 2.5) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 80; n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let f = a;
    let c = a;
    let d = 0;
    for (let n = 1; n < 200; n++) {
      d = 1 / (a + (n / 2) * d);
      c = a + n / 2 / c;
      f *= c * d;
    }
    r = 1 - Math.exp(-a * a) / (Math.sqrt(Math.PI) * f);
  }
  return x < 0 ? -r : r;
}

/** Deterministic values uniform in [-scale, scale). */
function uniform(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}

describe('PaellaVQModel (tiny checkpoint) against golden io/vqgan', () => {
  let rt: Runtime;
  let golden: Map<string, NamedTensor>;
  let expected: string[];
  let tmp: string;

  beforeAll(async () => {
    rt = await getRuntime();
    golden = await readHostTensors(IO_FILE);
    expected = [...golden.keys()].filter((name) => name !== 'in.image');
    tmp = await mkdtemp(join(tmpdir(), 'vqgan-test-'));
  });

  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('f32: all outputs and all 32 recorded activations match (io tolerance; indices exact)', async () => {
    expect(expected.filter((n) => n.startsWith('act.'))).toHaveLength(32);
    const out = await runAll(rt, golden, 'f32', true);
    expectAllMatchGolden(out, golden, (got, want, name) => expectClose(got, want, IO_TOL, name), expected);
  });

  it('f32 without a capture (fused LayerNorm affine, replicate-padded conv, GELU epilogue) matches too', async () => {
    const out = await runAll(rt, golden, 'f32', false);
    const outputs = expected.filter((n) => !n.startsWith('act.'));
    expect(outputs).toHaveLength(6);
    expectAllMatchGolden(out, golden, (got, want, name) => expectClose(got, want, IO_TOL, name), outputs);
  });

  it('f16: outputs and activations within the f16 tolerance, NMSE ≤ 1e-3, cosine ≥ 0.999; indices exact', async () => {
    expect(rt.hasF16).toBe(true);
    const out = await runAll(rt, golden, 'f16', true);
    // The f16 latents still pick every code the f32 reference picks (no near-tie in this data).
    expectAllMatchGolden(
      out,
      golden,
      (got, want, name) => {
        expectClose(got, want, F16_TOL, name);
        expectNmseCosine(got, want, F16_BOUNDS, name);
      },
      expected,
    );
    const without = await runAll(rt, golden, 'f16', false);
    const outputs = expected.filter((n) => !n.startsWith('act.'));
    expectAllMatchGolden(without, golden, (got, want, name) => expectClose(got, want, F16_TOL, name), outputs);
  });

  it('the CLI `forward vqgan.encode --capture` writes golden-named tensors that match', async () => {
    const outPath = join(tmp, 'encode.safetensors');
    const code = await main(['forward', 'vqgan.encode', '--model', MODEL_DIR, '--inputs', IO_FILE, '--out', outPath, '--capture']);
    expect(code).toBe(0);
    const written = await readHostTensors(outPath);
    const names = ['encode.latents', 'act.in_block.0.out', 'act.down_blocks.0.depthwise.0.out', 'act.down_blocks.3.1.out'];
    expectAllMatchGolden(written, golden, (got, want, name) => expectClose(got, want, IO_TOL, name), names);
  });

  // On adapters with WebGPU's default limits a 1024² decode's last level ([1, 512, 512, 192], 192 MiB
  // in f32) exceeds a storage binding; it then runs in bands of rows. Forced here with small bands.
  for (const dtype of ['f32', 'f16'] as const) {
    it(`decodes the last level in bands of 1, 3 and 5 rows exactly as whole (${dtype})`, async () => {
      const model = await PaellaVQModel.fromPretrained(rt, MODEL_DIR, { dtype });
      const { data, shape } = golden.get('encode.latents')!;
      const latents = rt.upload(data, shape, dtype);
      // One output row of the last level: batch 2, 2 × 12 wide, channelLevels[0] channels.
      const rowBytes = 2 * 24 * channelLevels(model.config)[0] * (dtype === 'f16' ? 2 : 4);
      const decoded = async (bandBytes?: number) => {
        const sample = await model.decode(latents, { bandBytes });
        const values = await rt.read(sample);
        sample.dispose();
        return values;
      };
      const whole = await decoded();
      expectClose(whole, golden.get('decode.force_not_quantize_true.sample')!.data, dtype === 'f32' ? IO_TOL : F16_TOL, 'whole');
      const copies = vi.spyOn(rt, 'copyBytes');
      try {
        for (const rows of [1, 3, 5]) {
          copies.mockClear();
          expect(Array.from(await decoded((rows + 4) * rowBytes)), `${rows} rows per band`).toEqual(Array.from(whole));
          // Per band and batch entry: the up-sampler's input, the halo crop, the kept rows, the image rows.
          expect(copies).toHaveBeenCalledTimes(Math.ceil(16 / rows) * 2 * 4);
        }
      } finally {
        copies.mockRestore();
        latents.dispose();
        model.dispose();
      }
    });
  }

  it('`vqgan roundtrip` writes the PNG of decode(encode(image)) clamped to [0, 1]', async () => {
    const inPath = join(tmp, 'in.png');
    const outPath = join(tmp, 'out.png');
    const image = golden.get('in.image')!;
    await writeFile(inPath, encodePng(image, 1));
    expect(await main(['vqgan', 'roundtrip', inPath, outPath, '--model', MODEL_DIR])).toBe(0);

    const model = await PaellaVQModel.fromPretrained(rt, MODEL_DIR);
    const source = decodePng(await readFile(inPath));
    const input = rt.upload(source.data, source.shape);
    const latents = await model.encode(input);
    const sample = await model.decode(latents);
    const reference = { shape: [...sample.shape], data: await rt.read(sample) };
    for (const t of [input, latents, sample]) t.dispose();
    model.dispose();

    const written = decodePng(await readFile(outPath));
    expect(written.shape).toEqual([1, 3, 32, 48]);
    expect(Array.from(written.data)).toEqual(Array.from(decodePng(encodePng(reference)).data));
    // The decoder's output does leave [0, 1] here, so the clamp is exercised.
    expect(reference.data.some((v) => v < 0 || v > 1)).toBe(true);
  });

  it('a missing key, a mis-shaped key and an unused key are errors naming the key (and both shapes); nothing leaks', async () => {
    const reader = await openSafetensors(CHECKPOINT);
    const tensors: Record<string, TensorToWrite> = {};
    for (const [name, info] of reader.tensors) tensors[name] = { dtype: info.dtype, shape: info.shape, data: await reader.readRaw(name) };
    await reader.close();
    const config = await readFile(`${MODEL_DIR}/config.json`);

    const attempt = async (name: string, edit: (t: Record<string, TensorToWrite>) => void) => {
      const dir = join(tmp, name);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir);
      await writeFile(join(dir, 'config.json'), config);
      const edited = { ...tensors };
      edit(edited);
      await writeSafetensors(join(dir, 'diffusion_pytorch_model.safetensors'), edited);
      await rt.sync();
      const live = rt.pool.stats().live;
      const error = await PaellaVQModel.fromPretrained(rt, dir).then(
        () => null,
        (err: Error) => err.message,
      );
      await rt.sync();
      expect(rt.pool.stats().live, `${name}: GPU buffers after the failed load`).toBe(live);
      return { error, file: join(dir, 'diffusion_pytorch_model.safetensors') };
    };

    const missing = await attempt('missing', (t) => delete t['up_blocks.2.gammas']);
    expect(missing.error).toBe(`${missing.file}: missing tensor 'up_blocks.2.gammas' (expected shape [6])`);

    const misShaped = await attempt('mis_shaped', (t) => {
      t['down_blocks.1.weight'] = { ...t['down_blocks.1.weight'], shape: [32, 16, 16] };
    });
    expect(misShaped.error).toBe(
      `${misShaped.file}: tensor 'down_blocks.1.weight' has shape [32, 16, 16], expected [32, 16, 4, 4]`,
    );

    const unused = await attempt('unused', (t) => {
      t['vquantizer.extra'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) };
    });
    expect(unused.error).toBe(`${unused.file}: 1 tensor(s) not used by the model: 'vquantizer.extra'`);
  });
});

describe('MixingResidualBlock channelwise MLP split along tokens', () => {
  it('runs a block whose MLP hidden exceeds maxStorageBufferBindingSize and matches an f64 reference on sampled tokens', async () => {
    const rt = await getRuntime();
    // A random MixingResidualBlock(16, 1024): a wide hidden over few tokens keeps the norms, the
    // depthwise conv and the residual adds cheap on the software GPU while the hidden passes the limit.
    const [height, width, c, hiddenDim] = [184, 184, 16, 1024];
    const rows = height * width;
    expect(rows * hiddenDim * 4).toBeGreaterThan(rt.limits.maxStorageBufferBindingSize);

    const shapes: Record<string, number[]> = {
      gammas: [6],
      'depthwise.1.weight': [c, 1, 3, 3],
      'depthwise.1.bias': [c],
      'channelwise.0.weight': [hiddenDim, c],
      'channelwise.0.bias': [hiddenDim],
      'channelwise.2.weight': [c, hiddenDim],
      'channelwise.2.bias': [c],
    };
    const host: Record<string, Float32Array> = {};
    const tensors: Record<string, TensorToWrite> = {};
    Object.entries(shapes).forEach(([name, shape], i) => {
      const n = shape.reduce((a, b) => a * b, 1);
      host[name] = uniform(n, 100 + i, shape.length > 1 ? Math.sqrt(3 / (n / shape[0])) : 0.5);
      tensors[name] = { dtype: 'F32', shape, data: host[name] };
    });
    const file = await SafetensorsFile.open(memorySource('block.safetensors', encodeSafetensors(tensors)));
    const block = await MixingResidualBlock.load(new WeightLoader(rt, file, 'block.safetensors', 'f32').root(), c, hiddenDim);
    const g = host.gammas;
    const [dwW, dwB] = [host['depthwise.1.weight'], host['depthwise.1.bias']];
    const [w1, b1] = [host['channelwise.0.weight'], host['channelwise.0.bias']];
    const [w2, b2] = [host['channelwise.2.weight'], host['channelwise.2.bias']];

    const chunk = block.mlpChunkRows(rt, rows, 'f32');
    expect(chunk).toBeLessThan(rows);
    expect(chunk * hiddenDim * 4).toBeLessThanOrEqual(rt.limits.maxStorageBufferBindingSize);

    const x = uniform(rows * c, 7, 2);
    const input = rt.upload(x, [1, height, width, c]);
    const output = block.forward({ rt }, input);
    const got = await rt.read(output);
    input.dispose();
    output.dispose();
    for (const t of block.tensors()) t.dispose();

    const normalized = (v: Float64Array, scale: number, shift: number): Float64Array => {
      const mean = v.reduce((s, a) => s + a, 0) / c;
      const variance = v.reduce((s, a) => s + (a - mean) ** 2, 0) / c;
      return v.map((a) => ((a - mean) / Math.sqrt(variance + 1e-6)) * scale + shift);
    };
    const pixel = (y: number, xx: number) => {
      const p = Math.min(height - 1, Math.max(0, y)) * width + Math.min(width - 1, Math.max(0, xx));
      return Float64Array.from(x.subarray(p * c, (p + 1) * c));
    };
    const referenceAt = (token: number): Float64Array => {
      const [y, xx] = [Math.floor(token / width), token % width];
      const depthwise = Float64Array.from(dwB);
      for (let ky = 0; ky < 3; ky++) {
        for (let kx = 0; kx < 3; kx++) {
          const t = normalized(pixel(y + ky - 1, xx + kx - 1), 1 + g[0], g[1]);
          for (let ch = 0; ch < c; ch++) depthwise[ch] += dwW[ch * 9 + ky * 3 + kx] * t[ch];
        }
      }
      const x1 = pixel(y, xx).map((v, ch) => v + depthwise[ch] * g[2]);
      const t2 = normalized(x1, 1 + g[3], g[4]);
      const hidden = Float64Array.from(b1, (bias, j) => {
        let h = bias;
        for (let ch = 0; ch < c; ch++) h += w1[j * c + ch] * t2[ch];
        return 0.5 * h * (1 + erf64(h / Math.SQRT2));
      });
      return x1.map((v, ch) => {
        let y2 = b2[ch];
        for (let j = 0; j < hiddenDim; j++) y2 += w2[ch * hiddenDim + j] * hidden[j];
        return v + y2 * g[5];
      });
    };

    // Tokens on both sides of every chunk boundary, the image corners and a spread in between.
    const tokens = new Set<number>([0, width - 1, rows - width, rows - 1]);
    for (let start = chunk; start < rows; start += chunk) for (const d of [-2, -1, 0, 1]) tokens.add(start + d);
    for (let i = 0; i < 400; i++) tokens.add(Math.floor(((i + 0.5) / 400) * rows));
    const sampled = [...tokens].sort((a, b) => a - b);
    const actual = new Float32Array(sampled.length * c);
    const reference = new Float32Array(sampled.length * c);
    sampled.forEach((token, i) => {
      actual.set(got.subarray(token * c, (token + 1) * c), i * c);
      reference.set(referenceAt(token), i * c);
    });
    expectClose(actual, reference, IO_TOL, 'sampled tokens');
  });
});

describe('PaellaVQModel at full size (manifests/vqgan.json)', () => {
  it('a random-weight F32 checkpoint with every manifest key loads with every key used (dry run and real), and runs', async () => {
    const rt = await getRuntime();
    const manifest = JSON.parse(await readFile(MANIFEST, 'utf8')) as {
      config: Record<string, unknown>;
      parameter_count: number;
      entries: { name: string; shape: number[]; dtype: string; kind: string }[];
    };
    const config = parsePaellaVQConfig(JSON.stringify(manifest.config), MANIFEST);
    expect(config).toEqual(parsePaellaVQConfig('{}', 'defaults'));
    expect(manifest.entries).toHaveLength(122);

    const tensors: Record<string, TensorToWrite> = {};
    let parameters = 0;
    manifest.entries.forEach(({ name, shape, dtype, kind }, i) => {
      const n = shape.reduce((a, b) => a * b, 1);
      if (kind === 'parameter') parameters += n;
      if (dtype === 'int64') {
        tensors[name] = { dtype: 'I64', shape, data: new BigInt64Array(n) };
        return;
      }
      const fanIn = shape.length > 1 ? n / shape[0] : 1;
      const data = uniform(n, 1000 + i, shape.length > 1 ? 1 / Math.sqrt(fanIn) : 0.05);
      // A BatchNorm variance must be positive.
      if (name.endsWith('running_var')) data.forEach((v, j) => (data[j] = 1 + v));
      tensors[name] = { dtype: 'F32', shape, data };
    });
    expect(parameters).toBe(manifest.parameter_count);

    const dir = await mkdtemp(join(tmpdir(), 'vqgan-full-'));
    try {
      await writeFile(join(dir, 'config.json'), JSON.stringify(manifest.config));
      await writeSafetensors(join(dir, 'diffusion_pytorch_model.safetensors'), tensors);
      const file = join(dir, 'diffusion_pytorch_model.safetensors');
      const reader = await openSafetensors(file);
      const shapesOnly = await PaellaVQModel.load(new WeightLoader(rt, reader, file, 'f16', { dryRun: true }), config);
      shapesOnly.dispose();
      await reader.close();

      const model = await PaellaVQModel.fromPretrained(rt, dir);
      expect(model.upBlocks).toHaveLength(1 + 12 + 1 + 1);
      const image = rt.upload(uniform(3 * 32 * 32, 5, 0.5).map((v) => v + 0.5), [1, 3, 32, 32]);
      const latents = await model.encode(image);
      expect(latents.shape).toEqual([1, 4, 8, 8]);
      const sample = await model.decode(latents);
      expect(sample.shape).toEqual([1, 3, 32, 32]);
      expect((await rt.read(sample)).every(Number.isFinite)).toBe(true);
      for (const t of [image, latents, sample]) t.dispose();
      model.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
