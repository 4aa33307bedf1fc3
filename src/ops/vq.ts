/**
 * Nearest-codebook vector quantisation, diffusers' `VectorQuantizer(legacy=False).forward`
 * (models/vq_model.py → vae.py), as PaellaVQModel uses it: indices from torch.cdist with ties to
 * the first code, z_q in diffusers' straight-through form and the forward value of its loss.
 * Kernels: shaders/vq.wgsl (nearest code per row, then one workgroup for the loss).
 */
import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';

const WG = 64;
const LOSS_WG = 256;
const F32_MAX = 3.4028234663852886e38;
/** Indices travel as f32 values, exact up to 2^24. */
const MAX_CODES = 2 ** 24;

export interface VectorQuantizeOptions {
  /** Weight of the commitment term (diffusers' default 0.25, as Paella's quantizer uses). */
  beta?: number;
}

export interface VectorQuantized {
  /** z_q, shaped like z: z + (e_index − z) per row, as diffusers returns it. */
  quantized: Tensor;
  /** [rows] f32: the chosen code of each row, an exact integer (see `readIndices`). */
  indices: Tensor;
  /** [1] f32: β·mean((z_q − z)²) + mean((z_q − z)²). */
  loss: Tensor;
}

/**
 * Quantises the rows of `z` (the last dimension is the channel: NHWC [B, H, W, C] or [N, C])
 * against `codebook` [codes, C].
 */
export function vectorQuantize(rt: Runtime, z: Tensor, codebook: Tensor, { beta = 0.25 }: VectorQuantizeOptions = {}): VectorQuantized {
  if (codebook.shape.length !== 2) {
    throw new Error(`vectorQuantize: codebook must be [codes, channels], got [${codebook.shape.join(', ')}]`);
  }
  const [codes, channels] = codebook.shape;
  if (z.shape[z.shape.length - 1] !== channels) {
    throw new Error(`vectorQuantize: z [${z.shape.join(', ')}] must end in the codebook's ${channels} channels`);
  }
  if (codes > MAX_CODES) throw new Error(`vectorQuantize: ${codes} codes exceed the ${MAX_CODES} an f32 index holds`);
  const rows = z.size / channels;
  const quantized = rt.empty(z.shape, z.dtype, 'vq.z_q');
  const indices = rt.empty([rows], 'f32', 'vq.indices');
  const rowErr = rt.empty([rows], 'f32', 'vq.row_err');
  rt.dispatch({
    kernel: { shader: 'vq.wgsl', consts: { WG }, dtypes: { T: z.dtype, E: codebook.dtype } },
    label: 'vq.nearest',
    params: new Params().u32(rows, codes, channels).f32(F32_MAX).data(),
    inputs: [z, codebook],
    outputs: [quantized, indices, rowErr],
    workgroups: rt.grid(rows, WG),
    work: rows * codes * channels * 4,
  });
  const loss = rt.empty([1], 'f32', 'vq.loss');
  rt.dispatch({
    kernel: { shader: 'vq.wgsl', flags: ['LOSS'], consts: { WG: LOSS_WG } },
    label: 'vq.loss',
    params: new Params().u32(rows).f32(z.size, beta).data(),
    inputs: [rowErr],
    outputs: [loss],
    workgroups: [1],
  });
  rowErr.dispose();
  return { quantized, indices, loss };
}

/** Reads the indices of `vectorQuantize` back as integers. */
export async function readIndices(rt: Runtime, indices: Tensor): Promise<Int32Array> {
  return Int32Array.from(await rt.read(indices));
}
