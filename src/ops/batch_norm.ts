/**
 * Inference BatchNorm (PaellaVQModel's encoder ends in nn.BatchNorm2d) needs no kernel of its own:
 * torch's CPU kernel folds it per channel into alpha = weight / sqrt(running_var + eps) and
 * beta = bias − running_mean·alpha, then computes x·alpha + beta. `foldBatchNorm` does the same
 * f32 steps on the host (GCC contracts beta's multiply-add and the output's into FMAs, so do we);
 * `affine` with the result then reproduces torch bit for bit.
 */
import { fmaF32 } from '../pipeline/avx_mathfun.js';

export interface BatchNormParams {
  weight: Float32Array;
  bias: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
}

export interface ScaleShift {
  scale: Float32Array;
  shift: Float32Array;
}

export function foldBatchNorm({ weight, bias, runningMean, runningVar }: BatchNormParams, eps = 1e-5): ScaleShift {
  const c = weight.length;
  if (bias.length !== c || runningMean.length !== c || runningVar.length !== c) {
    throw new Error(
      `foldBatchNorm: weight ${c}, bias ${bias.length}, running_mean ${runningMean.length} and running_var ${runningVar.length} values differ`,
    );
  }
  const eps32 = Math.fround(eps);
  const scale = new Float32Array(c);
  const shift = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    const invstd = Math.fround(1 / Math.fround(Math.sqrt(Math.fround(runningVar[i] + eps32))));
    scale[i] = Math.fround(invstd * weight[i]);
    shift[i] = fmaF32(-runningMean[i], scale[i], bias[i]);
  }
  return { scale, shift };
}
