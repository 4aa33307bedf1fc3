import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';
import type { StepCoefficients } from '../pipeline/scheduling_ddpm_wuerstchen.js';

const WG = 256;

/**
 * The scheduler's elementwise update on the device, so a denoising loop never reads latents back.
 * `sample`, `noise` and the result are f32 (latents stay f32 as in diffusers' f32 runs); the model
 * output may be f16.
 */
export function ddpmStep(rt: Runtime, sample: Tensor, modelOutput: Tensor, noise: Tensor, c: StepCoefficients): Tensor {
  if (sample.dtype !== 'f32' || noise.dtype !== 'f32') throw new Error('ddpmStep: sample and noise must be f32 tensors');
  if (modelOutput.size !== sample.size || noise.size !== sample.size) {
    throw new Error(
      `ddpmStep: sample [${sample.shape.join(', ')}], model output [${modelOutput.shape.join(', ')}] and noise [${noise.shape.join(', ')}] differ in size`,
    );
  }
  const uniform = (values: Float32Array, what: string): number => {
    if (values.some((v) => v !== values[0])) throw new Error(`ddpmStep: ${what} differs across the batch`);
    return values[0];
  };
  const out = rt.empty(sample.shape, 'f32', 'ddpm_step');
  rt.dispatch({
    kernel: { shader: 'ddpm_step.wgsl', consts: { WG }, dtypes: { T: modelOutput.dtype } },
    label: 'ddpm_step',
    params: new Params()
      .u32(sample.size)
      .f32(
        uniform(c.sqrtRecipAlpha, 'the timestep'),
        uniform(c.oneMinusAlpha, 'the timestep'),
        uniform(c.sqrtOneMinusAlphaCumprod, 'the timestep'),
        uniform(c.noiseStd, 'the timestep'),
      )
      .data(),
    inputs: [sample, modelOutput, noise],
    outputs: [out],
    workgroups: rt.grid(sample.size, WG),
  });
  return out;
}
