import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';
import { rowLayout, type ThreadsPerRow } from './row_layout.js';

export interface LayerNormOptions {
  /** Per-feature affine parameters (both or neither), e.g. CLIP's LayerNorms (eps 1e-5). */
  weight?: Tensor;
  bias?: Tensor;
  /** WuerstchenLayerNorm and DiffNeXt.seq_norm use 1e-6 without affine. */
  eps: number;
  /** Forces a row tiling (tests exercise every variant). */
  threadsPerRow?: ThreadsPerRow;
}

/**
 * torch.nn.functional.layer_norm over the last dimension of `x` [..., C]: in NHWC that is
 * WuerstchenLayerNorm's normalisation over channels. Statistics in f32 whatever the storage type.
 */
export function layerNorm(rt: Runtime, x: Tensor, { weight, bias, eps, threadsPerRow }: LayerNormOptions): Tensor {
  const cols = x.shape[x.shape.length - 1];
  const rows = x.size / cols;
  if (!weight !== !bias) throw new Error('layerNorm: give both weight and bias, or neither');
  for (const p of [weight, bias]) {
    if (p && p.size !== cols) {
      throw new Error(`layerNorm: parameter [${p.shape.join(', ')}] does not match the ${cols} features of [${x.shape.join(', ')}]`);
    }
  }
  const layout = rowLayout(rt, rows, cols, threadsPerRow);
  const out = rt.empty(x.shape, x.dtype, 'layer_norm');
  rt.dispatch({
    kernel: {
      shader: 'layer_norm.wgsl',
      flags: weight ? ['AFFINE'] : [],
      consts: layout.consts,
      dtypes: { T: x.dtype, W: weight?.dtype ?? 'f32' },
    },
    label: 'layer_norm',
    params: new Params().u32(rows, cols).f32(eps).data(),
    inputs: weight && bias ? [x, weight, bias] : [x],
    outputs: [out],
    workgroups: layout.workgroups,
  });
  return out;
}
