import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';

/** Channels and position lanes of one sum-of-squares workgroup. */
const CT = 64;
const LANES = 4;
/** A split covers at least this many positions, and there are at most MAX_SPLITS of them. */
const MIN_SPLIT = 256;
const MAX_SPLITS = 64;
const TPR = 256;
const WG = 256;

/**
 * diffusers' GlobalResponseNorm for an NHWC tensor `x` [B, H, W, C]:
 * agg = ||x||₂ over (H, W) per (b, c); out = gamma·(x·agg/(mean_C(agg) + 1e-6)) + beta + x.
 * `gamma` and `beta` hold C values (the module stores them as [1, 1, 1, C]).
 */
export function globalResponseNorm(rt: Runtime, x: Tensor, gamma: Tensor, beta: Tensor): Tensor {
  if (x.shape.length !== 4) throw new Error(`globalResponseNorm: expected an NHWC tensor, got [${x.shape.join(', ')}]`);
  const [b, h, w, c] = x.shape;
  if (gamma.size !== c || beta.size !== c) {
    throw new Error(`globalResponseNorm: gamma [${gamma.shape.join(', ')}] and beta [${beta.shape.join(', ')}] must hold ${c} values`);
  }
  const hw = h * w;
  const splits = Math.min(MAX_SPLITS, Math.ceil(hw / MIN_SPLIT));
  const chunk = Math.ceil(hw / splits);
  const params = new Params().u32(hw, c, splits, chunk, x.size).data();
  const partial = rt.empty([b, splits, c], 'f32', 'grn_partial');
  rt.dispatch({
    kernel: { shader: 'grn.wgsl', flags: ['GRN_SUMSQ'], consts: { CT, LANES }, dtypes: { T: x.dtype } },
    label: 'grn_sumsq',
    params,
    inputs: [x],
    outputs: [partial],
    workgroups: [Math.ceil(c / CT), splits, b],
  });
  const scale = rt.empty([b, c], 'f32', 'grn_scale');
  rt.dispatch({
    kernel: { shader: 'grn.wgsl', flags: ['GRN_SCALE'], consts: { TPR, RPW: 1 } },
    label: 'grn_scale',
    params,
    inputs: [partial],
    outputs: [scale],
    workgroups: [b],
  });
  const out = rt.empty(x.shape, x.dtype, 'grn');
  const vec4 = c % 4 === 0;
  rt.dispatch({
    kernel: { shader: 'grn.wgsl', flags: ['GRN_APPLY', ...(vec4 ? ['VEC4'] : [])], consts: { WG }, dtypes: { T: x.dtype, W: gamma.dtype } },
    label: 'grn_apply',
    params,
    inputs: [x, scale, gamma, beta],
    outputs: [out],
    workgroups: rt.grid(x.size / (vec4 ? 4 : 1), WG),
    work: x.size,
  });
  // Safe right after recording: a later dispatch that reuses these buffers runs after this one.
  partial.dispose();
  scale.dispose();
  return out;
}
