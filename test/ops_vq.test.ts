import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { readIndices, vectorQuantize } from '../src/ops/vq.js';
import { openFileSource } from '../src/platform/file.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/runtime/dtype.js';
import { expectClose, type Tolerance } from './helpers/compare.js';
import { getRuntime } from './helpers/gpu.js';
import { nchwToNhwc, nhwcToNchw } from './helpers/layout.js';

const FIXTURE = join(new URL('./fixtures/ops/', import.meta.url).pathname, 'vector_quantizer_0.safetensors');
const F32: Tolerance = { atol: 1e-6, rtol: 1e-5 }; // golden README §2, ops/*
const F16: Tolerance = { atol: 2e-3, rtol: 4e-3 }; // golden README §2, ops/f16_*
const f32 = Math.fround;

interface Golden {
  /** NCHW [2, 4, 5, 7] */
  z: Float32Array;
  zShape: number[];
  codebook: Float32Array;
  codes: number;
  indices: number[];
  zq: Float32Array;
  loss: Float32Array;
  cdist: Float32Array;
}

async function loadGolden(): Promise<Golden> {
  const file = await SafetensorsFile.open(await openFileSource(FIXTURE));
  try {
    return {
      z: await file.readF32('z'),
      zShape: [...file.tensors.get('z')!.shape],
      codebook: await file.readF32('codebook'),
      codes: file.tensors.get('codebook')!.shape[0],
      indices: await file.readI64AsNumbers('out.indices'),
      zq: await file.readF32('out.z_q'),
      loss: await file.readF32('out.loss'),
      cdist: await file.readF32('out.cdist'),
    };
  } finally {
    await file.close();
  }
}

/** Σ v² of a row summed in order, every step rounded to f32 (torch's order for fewer than 8 channels). */
function hostSqNorm(v: ArrayLike<number>): number {
  let s = 0;
  for (let c = 0; c < v.length; c++) s = f32(s + f32(v[c] * v[c]));
  return s;
}

/**
 * torch.cdist(z, e) for > 25 rows (ATen `_euclidean_dist`) in f32: sqrt(clamp_min(Σ_c(−2z_c)e_c
 * + |z|² + |e|², 0)), summed term by term with each product rounded. Rows are [rows, C].
 */
function hostCdist(z: Float32Array, codebook: Float32Array, channels: number): Float32Array {
  const rows = z.length / channels;
  const codes = codebook.length / channels;
  const out = new Float32Array(rows * codes);
  for (let r = 0; r < rows; r++) {
    const x = z.subarray(r * channels, (r + 1) * channels);
    const xNorm = hostSqNorm(x);
    for (let j = 0; j < codes; j++) {
      const e = codebook.subarray(j * channels, (j + 1) * channels);
      let sq = 0;
      for (let c = 0; c < channels; c++) sq = f32(sq + f32(-2 * x[c] * e[c]));
      sq = f32(f32(sq + xNorm) + hostSqNorm(e));
      out[r * codes + j] = f32(Math.sqrt(Math.max(sq, 0)));
    }
  }
  return out;
}

/** argmin per row, the first index on ties (torch.argmin). */
function hostArgmin(dist: Float32Array, codes: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < dist.length / codes; r++) {
    let best = 0;
    for (let j = 1; j < codes; j++) if (dist[r * codes + j] < dist[r * codes + best]) best = j;
    out.push(best);
  }
  return out;
}

const toF16 = (data: Float32Array) => data.map((v) => f16BitsToF32(f32ToF16Bits(v)));

describe('vectorQuantize vs diffusers VectorQuantizer(legacy=False) (ops/vector_quantizer_0)', () => {
  it('the host cdist reference reproduces torch.cdist bit for bit', async () => {
    const g = await loadGolden();
    const dist = hostCdist(nchwToNhwc(g.z, g.zShape), g.codebook, g.zShape[1]);
    expect(Array.from(dist)).toEqual(Array.from(g.cdist));
    expect(hostArgmin(dist, g.codes)).toEqual(g.indices);
  });

  it('f32: indices exact (including the crafted ties and near-ties), z_q and loss', async () => {
    const rt = await getRuntime();
    const g = await loadGolden();
    const [b, c, h, w] = g.zShape;
    const z = rt.upload(nchwToNhwc(g.z, g.zShape), [b, h, w, c]);
    const codebook = rt.upload(g.codebook, [g.codes, c]);
    const { quantized, indices, loss } = vectorQuantize(rt, z, codebook);
    expect(quantized.shape).toEqual([b, h, w, c]);
    expect(Array.from(await readIndices(rt, indices))).toEqual(g.indices);
    const [zq, lossValue] = await rt.readMany([quantized, loss]);
    expectClose(nhwcToNchw(zq, quantized.shape), g.zq, F32, 'z_q');
    expectClose(lossValue, g.loss, F32, 'loss');
    for (const t of [z, codebook, quantized, indices, loss]) t.dispose();
  });

  it('takes rows [N, C] as well as NHWC', async () => {
    const rt = await getRuntime();
    const g = await loadGolden();
    const c = g.zShape[1];
    const z = rt.upload(nchwToNhwc(g.z, g.zShape), [g.indices.length, c]);
    const codebook = rt.upload(g.codebook, [g.codes, c]);
    const { quantized, indices, loss } = vectorQuantize(rt, z, codebook);
    expect(quantized.shape).toEqual([g.indices.length, c]);
    expect(Array.from(await readIndices(rt, indices))).toEqual(g.indices);
    for (const t of [z, codebook, quantized, indices, loss]) t.dispose();
  });

  it('f16 storage: indices exact against the host cdist of the f16-rounded inputs, z_q and loss', async () => {
    const rt = await getRuntime();
    const g = await loadGolden();
    const [b, c, h, w] = g.zShape;
    const rowsF16 = toF16(nchwToNhwc(g.z, g.zShape));
    const codebookF16 = toF16(g.codebook);
    const expected = hostArgmin(hostCdist(rowsF16, codebookF16, c), g.codes);
    const expectedZq = new Float32Array(rowsF16.length);
    let sqErr = 0;
    expected.forEach((j, r) => {
      for (let k = 0; k < c; k++) {
        const d = codebookF16[j * c + k] - rowsF16[r * c + k];
        expectedZq[r * c + k] = rowsF16[r * c + k] + d;
        sqErr += d * d;
      }
    });
    const meanSq = sqErr / rowsF16.length;
    const z = rt.upload(rowsF16, [b, h, w, c], 'f16');
    const codebook = rt.upload(codebookF16, [g.codes, c], 'f16');
    const { quantized, indices, loss } = vectorQuantize(rt, z, codebook);
    expect(quantized.dtype).toBe(rt.storageDType('f16'));
    expect(Array.from(await readIndices(rt, indices))).toEqual(expected);
    const [zq, lossValue] = await rt.readMany([quantized, loss]);
    expectClose(zq, expectedZq, F16, 'z_q');
    expectClose(lossValue, [0.25 * meanSq + meanSq], F16, 'loss');
    for (const t of [z, codebook, quantized, indices, loss]) t.dispose();
  });

  it('resolves cdist values that round to the same sqrt to the first code, even if the later is closer squared', async () => {
    const rt = await getRuntime();
    // Found by search: |z − e1|² is one f32 ulp below |z − e0|², yet both round to the same sqrt.
    const rows = [-0.06919912993907928, -0.1808536797761917];
    const codes = [0.17402411997318268, 0.03226931393146515, 0.17402419447898865, 0.032269202172756195];
    const dist = hostCdist(Float32Array.from(rows), Float32Array.from(codes), 2);
    expect(dist[0]).toBe(dist[1]);
    const z = rt.upload(rows, [1, 2]);
    const codebook = rt.upload(codes, [2, 2]);
    const { quantized, indices, loss } = vectorQuantize(rt, z, codebook);
    expect(Array.from(await readIndices(rt, indices))).toEqual([0]);
    for (const t of [z, codebook, quantized, indices, loss]) t.dispose();
  });

  it('rounds each product before adding it, as torch did: fused multiply-adds would pick the other code here', async () => {
    const rt = await getRuntime();
    // Found by search: two codes at nearly the same distance whose order flips when the products
    // and squares of cdist's sums are fused into FMAs; the last element is torch's (unfused) pick.
    const cases: [number[], number[], number[], number][] = [
      [[-0.5153815150260925, -0.4764147400856018, 0.44743746519088745, 0.8875019550323486], [-0.7282763123512268, -0.02265157736837864, 0.5511173605918884, 0.9498492479324341], [-0.3024907410144806, -0.9301806688308716, 0.34375977516174316, 0.825157642364502], 0],
      [[0.8036788702011108, 0.12356790155172348, 0.887234091758728, -0.4850718379020691], [0.8977949619293213, 0.10281506925821304, 0.3904033899307251, -0.20748195052146912], [0.7095659375190735, 0.1443197876214981, 1.3840628862380981, -0.7626663446426392], 0],
      [[-0.9599529504776001, 0.45936667919158936, -0.10916619002819061, -0.6643438339233398], [-0.6754060387611389, 0.13744506239891052, -0.005078539252281189, -0.4562208652496338], [-1.244499683380127, 0.7812900543212891, -0.21325796842575073, -0.8724617958068848], 1],
    ];
    for (const [row, e0, e1, pick] of cases) {
      expect(hostArgmin(hostCdist(Float32Array.from(row), Float32Array.from([...e0, ...e1]), 4), 2)).toEqual([pick]);
      const z = rt.upload(row, [1, 4]);
      const codebook = rt.upload([...e0, ...e1], [2, 4]);
      const { quantized, indices, loss } = vectorQuantize(rt, z, codebook);
      expect(Array.from(await readIndices(rt, indices))).toEqual([pick]);
      for (const t of [z, codebook, quantized, indices, loss]) t.dispose();
    }
  });

  it('rejects a codebook that is not 2-D and rows whose width is not the codebook’s', async () => {
    const rt = await getRuntime();
    const z = rt.upload(new Float32Array(12), [3, 4]);
    const flat = rt.upload(new Float32Array(8), [8]);
    const narrow = rt.upload(new Float32Array(6), [2, 3]);
    expect(() => vectorQuantize(rt, z, flat)).toThrow('vectorQuantize: codebook must be [codes, channels], got [8]');
    expect(() => vectorQuantize(rt, z, narrow)).toThrow("vectorQuantize: z [3, 4] must end in the codebook's 3 channels");
    for (const t of [z, flat, narrow]) t.dispose();
  });
});
