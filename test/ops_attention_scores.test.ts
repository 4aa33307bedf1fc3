import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { attentionProbs } from '../src/ops/attention_scores.js';
import { openFileSource } from '../src/platform/file.js';
import type { Runtime } from '../src/runtime/device.js';
import type { DType } from '../src/runtime/dtype.js';
import { expectClose, type Tolerance } from './helpers/compare.js';
import { pseudoNormal, roundToF16 } from './helpers/golden_ops.js';
import { getRuntime } from './helpers/gpu.js';

// Goldens: ../shared/golden/ops/clip_attention_causal_padding_{0,1}.safetensors, transformers'
// CLIPAttention with output_attentions=True: out.attn_weights = softmax(q·kᵀ·scale + causal + padding).
// README §2: ops/* atol 1e-6 rtol 1e-5; f16 inputs against the f32 reference: atol 2e-3 rtol 4e-3.
const F32: Tolerance = { atol: 1e-6, rtol: 1e-5 };
const F16: Tolerance = { atol: 2e-3, rtol: 4e-3 };
const FINFO_MIN = -3.4028234663852886e38;

let rt: Runtime;
beforeAll(async () => {
  rt = await getRuntime();
});

async function readCase(name: string) {
  const path = fileURLToPath(new URL(`./fixtures/ops/${name}.safetensors`, import.meta.url));
  const file = await SafetensorsFile.open(await openFileSource(path));
  try {
    const f32 = (key: string) => file.readF32(key);
    const [batch, length, channels] = file.tensors.get('hidden_states')!.shape;
    const x = await f32('hidden_states');
    const project = async (which: string) =>
      hostLinear(x, await f32(`param.${which}_proj.weight`), await f32(`param.${which}_proj.bias`), channels);
    return {
      batch, length, channels,
      heads: file.tensors.get('out.attn_weights')!.shape[1],
      q: await project('q'),
      k: await project('k'),
      keep: await file.readI64AsNumbers('attention_mask_2d'),
      want: await f32('out.attn_weights'),
    };
  } finally {
    await file.close();
  }
}

/** x [rows, c] · weightᵀ + bias, in f64 rounded to f32. */
function hostLinear(x: Float32Array, weight: Float32Array, bias: Float32Array, c: number): Float32Array {
  const rows = x.length / c;
  const n = bias.length;
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < n; o++) {
      let s = bias[o];
      for (let i = 0; i < c; i++) s += x[r * c + i] * weight[o * c + i];
      out[r * n + o] = s;
    }
  return out;
}

interface Dims {
  batch: number;
  length: number;
  heads: number;
  channels: number;
}

/** torch's eager arithmetic: f32 scores plus finfo.min per mask (−inf where both), then softmax. */
function hostProbs(q: Float32Array, k: Float32Array, { batch, length, heads, channels }: Dims, causal: boolean, keep?: number[]): Float64Array {
  const d = channels / heads;
  const out = new Float64Array(batch * heads * length * length);
  const row = new Float64Array(length);
  for (let b = 0; b < batch; b++)
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < length; i++) {
        for (let j = 0; j < length; j++) {
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[(b * length + i) * channels + h * d + c] * k[(b * length + j) * channels + h * d + c];
          let s = Math.fround(dot / Math.sqrt(d));
          if (causal && j > i) s = Math.fround(s + FINFO_MIN);
          if (keep && keep[b * length + j] !== 1) s = Math.fround(s + FINFO_MIN);
          row[j] = s;
        }
        const max = Math.max(...row);
        let sum = 0;
        for (let j = 0; j < length; j++) sum += Math.exp(row[j] - max);
        for (let j = 0; j < length; j++) out[((b * heads + h) * length + i) * length + j] = Math.exp(row[j] - max) / sum;
      }
  return out;
}

async function runProbs(q: Float32Array, k: Float32Array, dims: Dims, dtype: DType, causal: boolean, keep?: number[]) {
  const shape = [dims.batch, dims.length, dims.channels];
  const tq = rt.upload(q, shape, dtype);
  const tk = rt.upload(k, shape, dtype);
  const mask = keep && rt.upload(keep, [dims.batch, dims.length], 'f32');
  const probs = attentionProbs(rt, tq, tk, { heads: dims.heads, causal, keyPaddingMask: mask });
  expect(probs.shape).toEqual([dims.batch, dims.heads, dims.length, dims.length]);
  expect(probs.dtype).toBe('f32');
  const values = await rt.read(probs);
  for (const t of [tq, tk, mask, probs]) t?.dispose();
  return values;
}

describe('attentionProbs against transformers CLIPAttention attn_weights (causal + padding)', () => {
  for (const name of ['clip_attention_causal_padding_0', 'clip_attention_causal_padding_1']) {
    it(`${name} (f32)`, async () => {
      const c = await readCase(name);
      expectClose(await runProbs(c.q, c.k, c, 'f32', true, c.keep), c.want, F32, name);
    });
  }

  it('clip_attention_causal_padding_1 with f16 q and k', async () => {
    const c = await readCase('clip_attention_causal_padding_1');
    const got = await runProbs(roundToF16(c.q), roundToF16(c.k), c, 'f16', true, c.keep);
    expectClose(got, c.want, F16, 'f16');
  });
});

describe('attentionProbs against the host reference of torch mask arithmetic', () => {
  // 11 tokens, head dim 6 (3 heads), batch 2. Batch 0 pads on the right (CLIP); batch 1 on the left,
  // so under the causal mask queries 0 and 1 see only keys hit by one mask or two (finfo.min vs −inf).
  const dims = { batch: 2, length: 11, heads: 3, channels: 18 };
  const q = pseudoNormal(dims.batch * dims.length * dims.channels, 11);
  const k = pseudoNormal(dims.batch * dims.length * dims.channels, 12);
  const keep = Array.from({ length: 2 * dims.length }, (_, i) => (i < dims.length ? Number(i < 7) : Number(i - dims.length >= 2)));
  const cases = [
    { label: 'no mask', causal: false, keep: undefined },
    { label: 'causal only', causal: true, keep: undefined },
    { label: 'padding only', causal: false, keep },
    { label: 'causal + left and right padding', causal: true, keep },
  ];
  for (const c of cases) {
    it(c.label, async () => {
      expectClose(await runProbs(q, k, dims, 'f32', c.causal, c.keep), hostProbs(q, k, dims, c.causal, c.keep), F32, c.label);
    });
  }

  it('rejects a padding mask of the wrong shape', () => {
    const t = rt.upload(q, [dims.batch, dims.length, dims.channels]);
    const mask = rt.upload(keep.slice(0, dims.length), [1, dims.length]);
    expect(() => attentionProbs(rt, t, t, { heads: 3, keyPaddingMask: mask })).toThrow(
      'attentionScores: keyPaddingMask must be [2, 11]; got [1, 11]',
    );
    t.dispose();
    mask.dispose();
  });
});
