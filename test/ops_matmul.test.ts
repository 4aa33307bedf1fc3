import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { deviceTraits, isCpuEmulated, type DeviceTraits } from '../src/ops/device_traits.js';
import { chooseVariant, linear, matmul, type FusedActivation, type MatmulVariant, type TileConfig } from '../src/ops/matmul.js';
import { openFileSource } from '../src/platform/file.js';
import { Runtime } from '../src/runtime/device.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/runtime/dtype.js';
import type { Tensor } from '../src/runtime/tensor.js';
import { expectClose, type Tolerance } from './helpers/compare.js';
import { getRuntime } from './helpers/gpu.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/ops/', import.meta.url));

/** ../shared/golden/README.md §2: `ops/*`. */
const GOLDEN: Tolerance = { atol: 1e-6, rtol: 1e-5 };
/** ../shared/golden/README.md §2: `ops/f16_*` (f16 storage, f32 accumulation). */
const GOLDEN_F16: Tolerance = { atol: 2e-3, rtol: 4e-3 };
/** Against the f64 host reference below: f32 summation noise plus the activations' few ulp. */
const HOST: Tolerance = { atol: 1e-5, rtol: 1e-4 };

const ALL_VARIANTS: MatmulVariant[] = [
  { tile: 'large', vec4: true },
  { tile: 'large', vec4: false },
  { tile: 'small', vec4: true },
  { tile: 'small', vec4: false },
  { tile: 'wide', vec4: true },
  { tile: { WG_M: 16, WG_N: 16, RM: 8, CN: 8, TK: 16 }, vec4: false },
  { tile: { WG_M: 8, WG_N: 16, RM: 4, CN: 8, TK: 8 }, vec4: false },
  { kernel: 'register', vec4: true },
  { kernel: 'register', vec4: false },
];

/** The register kernel, forced: these tests need this device to have fixed-size subgroups (lavapipe: 8). */
const REGISTER: MatmulVariant = { kernel: 'register' };

function variantName(v: MatmulVariant): string {
  const kernel = v.kernel ?? (v.tile ? `${typeof v.tile === 'string' ? v.tile : 'custom'} tile` : 'rule');
  return `${kernel}${v.vec4 === undefined ? '' : `, vec4=${v.vec4}`}`;
}

async function golden(name: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(await openFileSource(FIXTURES + name + '.safetensors'));
}

async function uploadGolden(file: SafetensorsFile, name: string): Promise<Tensor> {
  const rt = await getRuntime();
  const info = file.tensors.get(name)!;
  return info.dtype === 'F16'
    ? rt.uploadF16Bits(await file.readF16Bits(name), info.shape, 'f16', name)
    : rt.upload(await file.readF32(name), info.shape, 'f32', name);
}

/** Deterministic values in [-scale, scale) (mulberry32), rounded to f32 (or f16) like the GPU sees them. */
function randomValues(n: number, seed: number, scale = 1, f16 = false): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    const v = (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 * scale - scale;
    return f16 ? f16BitsToF32(f32ToF16Bits(v)) : v;
  });
}

// ---- f64 host reference ---------------------------------------------------------------------

/** erf in f64: Taylor series below 2.5, Lentz's continued fraction for erfc above. */
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
    // erfc(a) = exp(-a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + ...))))
    let f = a;
    let c = a;
    let d = 0;
    for (let n = 1; n < 200; n++) {
      const an = n / 2;
      d = 1 / (a + an * d);
      c = a + an / c;
      f *= c * d;
    }
    r = 1 - Math.exp(-a * a) / (Math.sqrt(Math.PI) * f);
  }
  return x < 0 ? -r : r;
}

const ACT64: Record<FusedActivation | 'none', (v: number) => number> = {
  none: (v) => v,
  gelu: (v) => 0.5 * v * (1 + erf64(v / Math.SQRT2)),
  silu: (v) => v / (1 + Math.exp(-v)),
  leaky_relu: (v) => (v >= 0 ? v : 0.2 * v),
  quick_gelu: (v) => v / (1 + Math.exp(-1.702 * v)),
};

interface HostGemm {
  a: Float32Array;
  b: Float32Array;
  bias?: Float32Array;
  residual?: Float32Array;
  batch: number;
  m: number;
  n: number;
  k: number;
  /** b is [batch, N, K] instead of [batch, K, N]. */
  bNK: boolean;
  alpha?: number;
  act?: FusedActivation;
}

function hostGemm(g: HostGemm): Float64Array {
  const { m, n, k } = g;
  const out = new Float64Array(g.batch * m * n);
  for (let z = 0; z < g.batch; z++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const bv = g.bNK ? g.b[z * n * k + j * k + p] : g.b[z * k * n + p * n + j];
          s += g.a[z * m * k + i * k + p] * bv;
        }
        const idx = z * m * n + i * n + j;
        const v = ACT64[g.act ?? 'none'](s * (g.alpha ?? 1) + (g.bias ? g.bias[j] : 0));
        out[idx] = v + (g.residual ? g.residual[idx] : 0);
      }
    }
  }
  return out;
}

// ---- golden cases -----------------------------------------------------------------------------

describe('linear against PyTorch goldens (F.linear)', () => {
  for (const name of ['linear_0', 'linear_1', 'linear_2']) {
    it(`${name}: every variant matches (atol 1e-6, rtol 1e-5)`, async () => {
      const rt = await getRuntime();
      const file = await golden(name);
      const x = await uploadGolden(file, 'x');
      const w = await uploadGolden(file, 'weight');
      const b = file.tensors.has('bias') ? await uploadGolden(file, 'bias') : undefined;
      const expected = await file.readF32('out');
      await file.close();
      const outs = [linear(rt, x, w, b), ...ALL_VARIANTS.map((variant) => linear(rt, x, w, b, { variant }))];
      expect(outs[0].shape).toEqual(file.tensors.get('out')!.shape);
      const got = await rt.readMany(outs);
      expectClose(got[0], expected, GOLDEN, `${name} (rule's choice)`);
      ALL_VARIANTS.forEach((v, i) => expectClose(got[i + 1], expected, GOLDEN, `${name} ${variantName(v)}`));
      for (const t of [x, w, b, ...outs]) t?.dispose();
    });
  }

  it('f16_linear_0: f16 storage, f32 accumulation matches the f32 result (atol 2e-3, rtol 4e-3)', async () => {
    const rt = await getRuntime();
    const file = await golden('f16_linear_0');
    const x = await uploadGolden(file, 'x');
    const w = await uploadGolden(file, 'weight');
    const b = await uploadGolden(file, 'bias');
    expect(x.dtype).toBe(rt.storageDType('f16'));
    const expected = await file.readF32('out');
    await file.close();
    const variants: MatmulVariant[] = [{ tile: 'large', vec4: false }, { kernel: 'register', vec4: true }, { kernel: 'register', vec4: false }];
    const outs = [linear(rt, x, w, b), ...variants.map((variant) => linear(rt, x, w, b, { variant }))];
    expect(outs[0].dtype).toBe(x.dtype);
    const got = await rt.readMany(outs);
    expectClose(got[0], expected, GOLDEN_F16, 'f16_linear_0 (rule)');
    variants.forEach((v, i) => expectClose(got[i + 1], expected, GOLDEN_F16, `f16_linear_0 ${variantName(v)}`));
    for (const t of [x, w, b, ...outs]) t.dispose();
  });
});

describe('matmul against PyTorch goldens (torch.matmul)', () => {
  it('matmul_0 [3,17,29] @ [3,29,13]: K, N not multiples of 4 (scalar loads), both tiles and the register kernel', async () => {
    const rt = await getRuntime();
    const file = await golden('matmul_0');
    const a = await uploadGolden(file, 'a');
    const b = await uploadGolden(file, 'b');
    const variants: MatmulVariant[] = [{ tile: 'small' }, { tile: 'large' }, REGISTER];
    const outs = variants.map((variant) => matmul(rt, a, b, { variant }));
    const expected = await file.readF32('out');
    await file.close();
    const got = await rt.readMany(outs);
    expect(outs[0].shape).toEqual([3, 17, 13]);
    variants.forEach((v, i) => expectClose(got[i], expected, GOLDEN, `matmul_0 ${variantName(v)}`));
    for (const t of [a, b, ...outs]) t.dispose();
  });

  it('matmul_1 [2,4,77,8] @ [2,4,8,92]: two batch dims, every variant', async () => {
    const rt = await getRuntime();
    const file = await golden('matmul_1');
    const a = await uploadGolden(file, 'a');
    const b = await uploadGolden(file, 'b');
    const expected = await file.readF32('out');
    await file.close();
    const outs = ALL_VARIANTS.map((variant) => matmul(rt, a, b, { variant }));
    const got = await rt.readMany(outs);
    expect(outs[0].shape).toEqual([2, 4, 77, 92]);
    ALL_VARIANTS.forEach((v, i) => expectClose(got[i], expected, GOLDEN, `matmul_1 ${variantName(v)}`));
    for (const t of [a, b, ...outs]) t.dispose();
  });
});

// ---- fused epilogue and shapes off the tile grid, against the f64 host reference -----------------

describe('linear fused epilogue against an f64 host reference (atol 1e-5, rtol 1e-4)', () => {
  // M = 135 and N = 70 fit neither 32- nor 64-wide tiles nor the register kernel's 32 × 32;
  // K = 36 allows vec4, K = 37 does not. Each case also runs the register kernel.
  const cases: { act?: FusedActivation; residual?: boolean; bias?: boolean; k: number; variant?: MatmulVariant }[] = [
    { act: 'gelu', k: 36 },
    { act: 'silu', k: 36, variant: { tile: 'large' } },
    { act: 'leaky_relu', k: 37 },
    { act: 'quick_gelu', k: 37, variant: { tile: 'large' } },
    { residual: true, k: 36 },
    { act: 'gelu', residual: true, k: 37, variant: { tile: 'large' } },
    { act: 'silu', residual: true, bias: false, k: 36 },
  ];
  for (const c of cases) {
    const what = `${c.bias === false ? 'no bias' : 'bias'} + ${c.act ?? 'no act'}${c.residual ? ' + residual' : ''}, K ${c.k}${c.variant ? `, ${variantName(c.variant)}` : ''}`;
    it(what, async () => {
      const rt = await getRuntime();
      const [m0, m1, n, k] = [3, 45, 70, c.k];
      const xs = randomValues(m0 * m1 * k, 1 + k, 2);
      const ws = randomValues(n * k, 2 + k, 0.5);
      const bs = c.bias === false ? undefined : randomValues(n, 3);
      const rs = c.residual ? randomValues(m0 * m1 * n, 4) : undefined;
      const x = rt.upload(xs, [m0, m1, k]);
      const w = rt.upload(ws, [n, k]);
      const b = bs && rt.upload(bs, [n]);
      const r = rs && rt.upload(rs, [m0, m1, n]);
      const y = linear(rt, x, w, b, { act: c.act, residual: r, variant: c.variant ?? { kernel: 'tiled' } });
      const yr = linear(rt, x, w, b, { act: c.act, residual: r, variant: REGISTER });
      expect(y.shape).toEqual([m0, m1, n]);
      const expected = hostGemm({ a: xs, b: ws, bias: bs, residual: rs, batch: 1, m: m0 * m1, n, k, bNK: true, act: c.act });
      const [got, gotRegister] = await rt.readMany([y, yr]);
      expectClose(got, expected, HOST, what);
      expectClose(gotRegister, expected, HOST, `${what}, register kernel`);
      for (const t of [x, w, b, r, y, yr]) t?.dispose();
    });
  }

  it('writes into opts.out; a single row (M = 1) and a single output (N = 1)', async () => {
    const rt = await getRuntime();
    const xs = randomValues(40, 11);
    const ws = randomValues(3 * 40, 12);
    const x = rt.upload(xs, [1, 40]);
    const w = rt.upload(ws, [3, 40]);
    const w1 = rt.upload(ws.subarray(0, 40), [1, 40]);
    const expectedM1 = hostGemm({ a: xs, b: ws, batch: 1, m: 1, n: 3, k: 40, bNK: true, act: 'gelu' });
    const expectedN1 = hostGemm({ a: xs, b: ws, batch: 1, m: 1, n: 1, k: 40, bNK: true });
    for (const kernel of ['tiled', 'register'] as const) {
      const out = rt.empty([1, 3], 'f32');
      expect(linear(rt, x, w, undefined, { out, act: 'gelu', variant: { kernel } })).toBe(out);
      const y1 = linear(rt, x, w1, undefined, { variant: { kernel } });
      const [got, got1] = await rt.readMany([out, y1]);
      expectClose(got, expectedM1, HOST, `M = 1, ${kernel}`);
      expectClose(got1, expectedN1, HOST, `N = 1, ${kernel}`);
      for (const t of [out, y1]) t.dispose();
    }
    for (const t of [x, w, w1]) t.dispose();
  });

  it('f32 activations with f16 weights and bias (W alias), large tile and register kernel', async () => {
    const rt = await getRuntime();
    const [m, n, k] = [70, 66, 44];
    const xs = randomValues(m * k, 21);
    const ws = randomValues(n * k, 22, 0.5, true);
    const bs = randomValues(n, 23, 1, true);
    const x = rt.upload(xs, [m, k]);
    const w = rt.upload(ws, [n, k], 'f16');
    const b = rt.upload(bs, [n], 'f16');
    const y = linear(rt, x, w, b, { act: 'gelu', variant: { tile: 'large' } });
    const yr = linear(rt, x, w, b, { act: 'gelu', variant: REGISTER });
    expect(y.dtype).toBe('f32');
    const expected = hostGemm({ a: xs, b: ws, bias: bs, batch: 1, m, n, k, bNK: true, act: 'gelu' });
    const [got, gotRegister] = await rt.readMany([y, yr]);
    expectClose(got, expected, HOST, 'f32 x f16 weights, large tile');
    expectClose(gotRegister, expected, HOST, 'f32 x f16 weights, register kernel');
    for (const t of [x, w, b, y, yr]) t.dispose();
  });

  it('f16 activations with residual, large tile and register kernel: within f16 output rounding (atol 2e-3, rtol 4e-3)', async () => {
    const rt = await getRuntime();
    const [m, n, k] = [100, 72, 40];
    const xs = randomValues(m * k, 31, 1, true);
    const ws = randomValues(n * k, 32, 0.5, true);
    const rs = randomValues(m * n, 33, 1, true);
    const x = rt.upload(xs, [m, k], 'f16');
    const w = rt.upload(ws, [n, k], 'f16');
    const r = rt.upload(rs, [m, n], 'f16');
    const y = linear(rt, x, w, undefined, { act: 'silu', residual: r, variant: { tile: 'large', vec4: true } });
    const yr = linear(rt, x, w, undefined, { act: 'silu', residual: r, variant: { kernel: 'register', vec4: true } });
    const expected = hostGemm({ a: xs, b: ws, residual: rs, batch: 1, m, n, k, bNK: true, act: 'silu' });
    const [got, gotRegister] = await rt.readMany([y, yr]);
    expectClose(got, expected, GOLDEN_F16, 'f16 silu + residual, large tile');
    expectClose(gotRegister, expected, GOLDEN_F16, 'f16 silu + residual, register kernel');
    for (const t of [x, w, r, y, yr]) t.dispose();
  });

  it('GELU in the epilogue is exact-erf GELU to within 2 ulp-of-1 over [-10, 10] (identity weight)', async () => {
    const rt = await getRuntime();
    const n = 64;
    const xs = Float32Array.from({ length: 64 * n }, (_, i) => -10 + (20 * i) / (64 * n - 1));
    const eye = Float32Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0));
    const x = rt.upload(xs, [64, n]);
    const w = rt.upload(eye, [n, n]);
    const y = linear(rt, x, w, undefined, { act: 'gelu' });
    const got = await rt.read(y);
    let worst = 0;
    got.forEach((v, i) => {
      const ref = ACT64.gelu(xs[i]);
      worst = Math.max(worst, Math.abs(v - ref) / Math.max(1, Math.abs(ref)));
    });
    expect(worst).toBeLessThanOrEqual(2 * 2 ** -23);
    for (const t of [x, w, y]) t.dispose();
  });
});

describe('batched matmul against an f64 host reference (atol 1e-5, rtol 1e-4)', () => {
  const cases: { batch: number[]; m: number; n: number; k: number; transposeB: boolean; alpha?: number; variant?: MatmulVariant }[] = [
    { batch: [1], m: 77, n: 92, k: 64, transposeB: true, alpha: 0.125 },
    { batch: [3], m: 65, n: 33, k: 31, transposeB: true, variant: { tile: 'large' } },
    { batch: [2, 3], m: 40, n: 68, k: 20, transposeB: false, alpha: -2, variant: { tile: 'large', vec4: true } },
    { batch: [5], m: 9, n: 130, k: 17, transposeB: false, variant: { tile: 'small', vec4: false } },
    { batch: [3], m: 65, n: 33, k: 31, transposeB: true, variant: REGISTER },
    { batch: [2, 3], m: 40, n: 68, k: 20, transposeB: false, alpha: -2, variant: { kernel: 'register', vec4: true } },
    { batch: [5], m: 9, n: 130, k: 17, transposeB: false, variant: REGISTER },
    { batch: [2], m: 33, n: 36, k: 24, transposeB: false, variant: { kernel: 'register', vec4: false } },
  ];
  for (const c of cases) {
    const what = `[${[...c.batch, c.m, c.k].join(',')}] @ ${c.transposeB ? 'ᵀ' : ''}[${[...c.batch, ...(c.transposeB ? [c.n, c.k] : [c.k, c.n])].join(',')}]` +
      `${c.alpha !== undefined ? ` · ${c.alpha}` : ''}${c.variant ? ` (${variantName(c.variant)})` : ''}`;
    it(what, async () => {
      const rt = await getRuntime();
      const batch = c.batch.reduce((p, d) => p * d, 1);
      const as = randomValues(batch * c.m * c.k, 41 + c.m);
      const bs = randomValues(batch * c.k * c.n, 42 + c.n);
      const a = rt.upload(as, [...c.batch, c.m, c.k]);
      const b = rt.upload(bs, [...c.batch, ...(c.transposeB ? [c.n, c.k] : [c.k, c.n])]);
      const y = matmul(rt, a, b, { transposeB: c.transposeB, alpha: c.alpha, variant: c.variant });
      expect(y.shape).toEqual([...c.batch, c.m, c.n]);
      const expected = hostGemm({ a: as, b: bs, batch, m: c.m, n: c.n, k: c.k, bNK: c.transposeB, alpha: c.alpha });
      expectClose(await rt.read(y), expected, HOST, what);
      for (const t of [a, b, y]) t.dispose();
    });
  }
});

describe('matmul over row windows (attention query chunks) against an f64 host reference (atol 1e-5, rtol 1e-4)', () => {
  // a [3, 21, 12]: rows 8 .. 8 + 9 of each matrix; the product lands in rows 4 .. 4 + 9 of out [3, 16, 20].
  const batch = 3, rows = 21, k = 12, n = 20, start = 8, count = 9, outRows = 16, outStart = 4;
  for (const variant of [{ tile: 'small' as const }, REGISTER, { kernel: 'register' as const, vec4: false }]) {
    it(`aRows and into (${variantName(variant)})`, async () => {
      const rt = await getRuntime();
      const as = randomValues(batch * rows * k, 61);
      const bs = randomValues(batch * k * n, 62);
      const a = rt.upload(as, [batch, rows, k]);
      const b = rt.upload(bs, [batch, k, n]);
      const window = matmul(rt, a, b, { aRows: { start, count }, variant });
      expect(window.shape).toEqual([batch, count, n]);
      const out = rt.upload(new Float32Array(batch * outRows * n).fill(7), [batch, outRows, n]);
      expect(matmul(rt, a, b, { aRows: { start, count }, into: { out, rowStart: outStart }, variant })).toBe(out);
      const picked = new Float32Array(batch * count * k);
      for (let z = 0; z < batch; z++) picked.set(as.subarray((z * rows + start) * k, (z * rows + start + count) * k), z * count * k);
      const expected = hostGemm({ a: picked, b: bs, batch, m: count, n, k, bNK: false });
      expectClose(await rt.read(window), expected, HOST, 'aRows');
      const written = await rt.read(out);
      for (let z = 0; z < batch; z++) {
        for (let r = 0; r < outRows; r++) {
          const got = written.subarray((z * outRows + r) * n, (z * outRows + r + 1) * n);
          if (r < outStart || r >= outStart + count) expect(Array.from(got)).toEqual(Array(n).fill(7));
          else expectClose(got, expected.subarray((z * count + r - outStart) * n, (z * count + r - outStart + 1) * n), HOST, `row ${r}`);
        }
      }
      for (const t of [a, b, window, out]) t.dispose();
    });
  }

  it('rejects windows outside the matrices, unaligned starts and an `into` of the wrong shape', async () => {
    const rt = await getRuntime();
    const a = rt.upload(randomValues(2 * 5 * 6, 63), [2, 5, 6]);
    const b = rt.upload(randomValues(2 * 6 * 4, 64), [2, 6, 4]);
    const out = rt.empty([2, 8, 3], 'f32');
    expect(() => matmul(rt, a, b, { aRows: { start: 2, count: 4 } })).toThrow(
      'matmul: aRows rows 2 .. 6 do not fit 5 rows of 6 (or do not start on a multiple of 4 elements)',
    );
    expect(() => matmul(rt, a, b, { aRows: { start: 1, count: 2 } })).toThrow(
      'matmul: aRows rows 1 .. 3 do not fit 5 rows of 6 (or do not start on a multiple of 4 elements)',
    );
    expect(() => matmul(rt, a, b, { into: { out, rowStart: 0 } })).toThrow(
      'matmul: into.out [2, 8, 3] f32 cannot hold rows of [2, 5, 4] f32',
    );
    for (const t of [a, b, out]) t.dispose();
  });
});

describe('custom tile configurations (tuning path) against an f64 host reference (atol 1e-5, rtol 1e-4)', () => {
  // A tall, narrow thread block with a short K step, not one of the named tiles.
  const tile: TileConfig = { WG_M: 4, WG_N: 16, RM: 8, TK: 8 };
  for (const vec4 of [true, false]) {
    it(`RM 8, 4×16 threads, K step 8, vec4=${vec4}: linear + gelu and matmul on off-grid shapes`, async () => {
      const rt = await getRuntime();
      const [m, n, k] = [45, 68, 36];
      const xs = randomValues(m * k, 61);
      const ws = randomValues(n * k, 62);
      const bs = randomValues(n, 63);
      const x = rt.upload(xs, [m, k]);
      const w = rt.upload(ws, [n, k]);
      const b = rt.upload(bs, [n]);
      const bKN = rt.upload(ws, [1, k, n]);
      const y = linear(rt, x, w, b, { act: 'gelu', variant: { tile, vec4 } });
      const z = matmul(rt, x.reshape([1, m, k]), bKN, { variant: { tile, vec4 } });
      const [gy, gz] = await rt.readMany([y, z]);
      expectClose(gy, hostGemm({ a: xs, b: ws, bias: bs, batch: 1, m, n, k, bNK: true, act: 'gelu' }), HOST, 'linear');
      expectClose(gz, hostGemm({ a: xs, b: ws, batch: 1, m, n, k, bNK: false }), HOST, 'matmul');
      for (const t of [x, w, b, bKN, y, z]) t.dispose();
    });
  }

  it('rejects a configuration the shader cannot tile', async () => {
    const rt = await getRuntime();
    const x = rt.upload(randomValues(8, 71), [2, 4]);
    const bad: TileConfig = { WG_M: 4, WG_N: 4, RM: 6, TK: 8 };
    expect(() => linear(rt, x, x, undefined, { variant: { tile: bad } })).toThrow(
      'linear: tile {"WG_M":4,"WG_N":4,"RM":6,"TK":8}: RM and CN must be 4 or 8 and TK a multiple of 4',
    );
    x.dispose();
  });
});

describe('variant rule and input checks', () => {
  const GPU: DeviceTraits = { cpuEmulated: false, fixedSubgroupSize: 32 };
  const LAVAPIPE: DeviceTraits = { cpuEmulated: true, fixedSubgroupSize: 8 };

  it('on GPUs: small tiles for skinny shapes, wide ones for Stage C fc1 (N 6144), large for fc2; vec4 when aligned', () => {
    expect(chooseVariant(GPU, 77, 768, 768, 1, true)).toEqual({ kernel: 'tiled', tile: 'small', vec4: true });
    expect(chooseVariant(GPU, 154, 5120, 1280, 1, true)).toEqual({ kernel: 'tiled', tile: 'small', vec4: true });
    expect(chooseVariant(GPU, 1152, 6144, 1536, 1, true)).toEqual({ kernel: 'tiled', tile: 'wide', vec4: true });
    expect(chooseVariant(GPU, 1152, 1536, 6144, 1, true)).toEqual({ kernel: 'tiled', tile: 'large', vec4: true });
    expect(chooseVariant(GPU, 64, 30, 8, 1, false)).toEqual({ kernel: 'tiled', tile: 'small', vec4: false });
  });

  it('on CPU-emulated GPUs: the register kernel, unless subgroups are missing or of no fixed size that divides 32 rows', () => {
    expect(chooseVariant(LAVAPIPE, 1152, 6144, 1536, 1, true).kernel).toBe('register');
    expect(chooseVariant(LAVAPIPE, 17, 13, 29, 3, false)).toEqual({ kernel: 'register', tile: 'small', vec4: false });
    expect(chooseVariant({ cpuEmulated: true, fixedSubgroupSize: null }, 1152, 6144, 1536, 1, true).kernel).toBe('tiled');
    expect(chooseVariant({ cpuEmulated: true, fixedSubgroupSize: 64 }, 1152, 6144, 1536, 1, true).kernel).toBe('tiled');
  });

  it('recognises lavapipe and SwiftShader from their adapter info, not hardware GPUs', () => {
    const info = (vendor: string, architecture: string, device: string, description: string) => ({ vendor, architecture, device, description, backend: 'dawn (node)' });
    expect(isCpuEmulated(info('mesa', 'software', 'llvmpipe-llvm-15-0-6-256-bits-', 'llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)'))).toBe(true);
    // Chromium's WebGPU on SwiftShader, as its adapter reports itself.
    expect(isCpuEmulated(info('google', 'swiftshader', '', ''))).toBe(true);
    expect(isCpuEmulated(info('nvidia', 'hopper', '', 'NVIDIA H100 80GB HBM3'))).toBe(false);
    expect(isCpuEmulated(info('mesa', 'rdna-3', '', 'AMD Radeon RX 7900 XTX (RADV NAVI31)'))).toBe(false);
  });

  it('without subgroups the rule falls back to tiles, and forcing the register kernel names what is missing', async () => {
    const plain = await Runtime.create({ subgroups: false });
    try {
      expect(deviceTraits(plain).fixedSubgroupSize).toBeNull();
      expect(chooseVariant(deviceTraits(plain), 1152, 6144, 1536, 1, true).kernel).toBe('tiled');
      const x = plain.upload(randomValues(2 * 8, 81), [2, 8]);
      expect(() => linear(plain, x, x, undefined, { variant: REGISTER })).toThrow(
        'linear: the register kernel needs subgroups of one size dividing 32; this device has none of a fixed size',
      );
      x.dispose();
    } finally {
      await plain.sync();
      plain.destroy();
    }
  });

  it('rejects mismatched shapes, dtypes, forced vec4 on unaligned K and an out aliasing an input', async () => {
    const rt = await getRuntime();
    const x = rt.upload(randomValues(2 * 6, 51), [2, 6]);
    const w = rt.upload(randomValues(3 * 6, 52), [3, 6]);
    const w5 = rt.upload(randomValues(3 * 5, 53), [3, 5]);
    const b4 = rt.upload(randomValues(4, 54), [4]);
    expect(() => linear(rt, x, w5)).toThrow('linear: weight [3, 5] does not match input [2, 6] (expected [N, 6])');
    expect(() => linear(rt, x, w, b4)).toThrow('linear: bias [4] does not match weight [3, 6] (expected [3])');
    expect(() => linear(rt, x, w, undefined, { residual: x })).toThrow('linear: residual [2, 6] f32 must be [2, 3] f32');
    expect(() => linear(rt, x, w, undefined, { variant: { vec4: true } })).toThrow(
      'linear: vec4 loads need K % 4 == 0 (M 2, N 3, K 6)',
    );
    const r = rt.upload(randomValues(6, 55), [2, 3]);
    expect(() => linear(rt, x, w, undefined, { residual: r, out: r })).toThrow(
      'linear: out overlaps an input; WebGPU forbids a written binding aliasing another',
    );
    expect(() => matmul(rt, x, w)).toThrow('matmul: inner dims differ: a [2, 6], b [3, 6]');
    expect(() => matmul(rt, x.reshape([1, 2, 6]), w)).toThrow(
      'matmul: a [1, 2, 6] and b [3, 6] need the same batch dims and rank >= 2',
    );
    for (const t of [x, w, w5, b4, r]) t.dispose();
  });
});
