import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';

const WG = 256;

/**
 * 'gelu': exact erf GELU (nn.GELU(), transformers' ACT2FN['gelu']); 'gelu_tanh': its tanh
 * approximation; 'quick_gelu': x·sigmoid(1.702x) (CLIP); 'leaky_relu': slope 0.2 (the only one
 * Würstchen uses).
 */
export type Activation = 'gelu' | 'gelu_tanh' | 'quick_gelu' | 'silu' | 'leaky_relu' | 'sigmoid';

/** Applies `kind` elementwise, in f32 whatever the storage type. */
export function activation(rt: Runtime, x: Tensor, kind: Activation): Tensor {
  const out = rt.empty(x.shape, x.dtype, kind);
  rt.dispatch({
    kernel: { shader: 'activation.wgsl', flags: [`ACT_${kind.toUpperCase()}`], consts: { WG }, dtypes: { T: x.dtype } },
    label: kind,
    params: new Params().u32(x.size).data(),
    inputs: [x],
    outputs: [out],
    workgroups: rt.grid(x.size, WG),
  });
  return out;
}
