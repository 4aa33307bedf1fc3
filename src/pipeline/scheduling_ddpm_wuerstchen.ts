/**
 * Mirrors diffusers v0.21.0 src/diffusers/schedulers/scheduling_ddpm_wuerstchen.py
 * (`DDPMWuerstchenScheduler`), and `DEFAULT_STAGE_C_TIMESTEPS` of
 * src/diffusers/pipelines/wuerstchen/pipeline_wuerstchen_prior.py.
 *
 * Arithmetic follows torch's float32 semantics: `s`, the timesteps and everything derived from them
 * are float32 tensors, so every operation is rounded to float32 (`Math.fround`) in the order torch
 * evaluates it, and Python float operands (`torch.pi`, the clamp bounds) are cast to float32.
 */
import { describe } from '../io/safetensors_format.js';
import { type HostTensor, numel } from './host_tensor.js';
import { TorchGenerator, randnTensor } from './torch_generator.js';

const f = Math.fround;
const PI_F32 = f(Math.PI);
const CLAMP_MIN = f(0.0001);
const CLAMP_MAX = f(0.9999);

/** numpy.linspace(start, stop, num) in float64: `i·step + start`, the last value set to `stop`. */
function numpyLinspace(start: number, stop: number, num: number): number[] {
  const step = (stop - start) / (num - 1);
  return Array.from({ length: num }, (_, i) => (i === num - 1 ? stop : i * step + start));
}

/** The prior pipeline's default schedule (float64, as the Python list holds it). */
export const DEFAULT_STAGE_C_TIMESTEPS: readonly number[] = Object.freeze([
  ...numpyLinspace(1.0, 2 / 3, 20),
  ...numpyLinspace(2 / 3, 0.0, 11).slice(1),
]);

/**
 * `torch.linspace(start, end, steps)` for float32 on the CPU (aten linspace_kernel): the first half
 * counts up from `start`, the second half down from `end`; AVX2 builds fill 16 values per loop
 * iteration as two 8-wide `arange(base, step)` vectors, the rest one by one.
 */
function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  const step = f((f(end) - f(start)) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  const at = (idx: number): number =>
    idx < halfway ? f(f(start) + f(step * idx)) : f(f(end) - f(step * (steps - idx - 1)));
  const VEC = 8;
  let i = 0;
  for (; i + 2 * VEC <= steps; i += 2 * VEC) {
    for (const start of [i, i + VEC]) {
      const base = at(start);
      for (let lane = 0; lane < VEC; lane++) out[start + lane] = f(base + f(lane * step));
    }
  }
  for (; i < steps; i++) out[i] = at(i);
  return out;
}

/** `tensor ** exponent` for a float32 tensor and a Python float (aten pow_tensor_scalar kernels). */
function powF32(base: number, exponent: number): number {
  if (exponent === 2) return f(base * base);
  if (exponent === 3) return f(f(base * base) * base);
  if (exponent === 0.5) return f(Math.sqrt(base));
  return f(Math.pow(base, exponent));
}

export interface DDPMWuerstchenSchedulerConfig {
  scaler?: number;
  s?: number;
}

/**
 * Per batch item coefficients of one `step`. The elementwise update is, with every operation
 * rounded to float32 in this order (which is how torch evaluates diffusers' expression):
 *
 *   prev = sqrtRecipAlpha · (sample − (oneMinusAlpha · modelOutput) / sqrtOneMinusAlphaCumprod)
 *          + noiseStd · noise
 *
 * `noiseStd` is 0 on the final step (prev_t = 0), where diffusers multiplies the noise term by 0.
 */
export interface StepCoefficients {
  timestep: Float32Array;
  prevTimestep: Float32Array;
  alphaCumprod: Float32Array;
  alphaCumprodPrev: Float32Array;
  sqrtRecipAlpha: Float32Array;
  oneMinusAlpha: Float32Array;
  sqrtOneMinusAlphaCumprod: Float32Array;
  noiseStd: Float32Array;
}

/** Where `step` gets its noise: given values, or drawn like `randn_tensor(shape, generator)`. */
export type StepNoise = HostTensor | TorchGenerator | readonly TorchGenerator[];

export class SchedulerConfigError extends Error {
  override name = 'SchedulerConfigError';
}

export class DDPMWuerstchenScheduler {
  readonly scaler: number;
  /** `self.s`, a float32 tensor. */
  readonly s: number;
  readonly initAlphaCumprod: number;
  readonly initNoiseSigma = 1.0;
  timesteps: Float32Array = new Float32Array(0);

  constructor({ scaler = 1.0, s = 0.008 }: DDPMWuerstchenSchedulerConfig = {}) {
    this.scaler = scaler;
    this.s = f(s);
    const arg = f(f(f(this.s / f(1 + this.s)) * PI_F32) * 0.5);
    this.initAlphaCumprod = powF32(f(Math.cos(arg)), 2);
  }

  /**
   * From a parsed `scheduler/scheduler_config.json`. Values that would turn every ᾱ into NaN are
   * refused: `scaler` ≤ 0 (t^scaler is infinite at t = 0) and `s` < 0 (s = −1 divides by zero).
   */
  static fromConfig(config: Record<string, unknown>): DDPMWuerstchenScheduler {
    const read = (key: string, valid: (value: number) => boolean, what: string): number | undefined => {
      const value = config[key];
      if (value === undefined) return undefined;
      if (typeof value !== 'number') throw new SchedulerConfigError(`scheduler config: "${key}" must be a number, got ${describe(value)}`);
      if (!Number.isFinite(value) || !valid(value)) throw new SchedulerConfigError(`scheduler config: "${key}" must be ${what}, got ${value}`);
      return value;
    };
    return new DDPMWuerstchenScheduler({
      scaler: read('scaler', (v) => v > 0, 'a positive finite number'),
      s: read('s', (v) => v >= 0, 'a finite number ≥ 0'),
    });
  }

  /**
   * ᾱ(t) = cos²((t + s)/(1 + s)·π/2) / ᾱ(0), clamped to [1e-4, 0.9999]; `t` is cast to float32.
   * torch takes the cosine with SLEEF's `cosf` (≤ 1 ulp); here it is float64 `Math.cos` rounded to
   * float32, so an occasional value differs from torch by a float32 ulp or two.
   */
  _alphaCumprod(t: ArrayLike<number>): Float32Array {
    const out = new Float32Array(t.length);
    for (let i = 0; i < t.length; i++) {
      let ti = f(t[i]);
      if (this.scaler > 1) ti = f(1 - powF32(f(1 - ti), this.scaler));
      else if (this.scaler < 1) ti = powF32(ti, this.scaler);
      const arg = f(f(f(f(ti + this.s) / f(1 + this.s)) * PI_F32) * 0.5);
      const a = f(powF32(f(Math.cos(arg)), 2) / this.initAlphaCumprod);
      out[i] = Math.min(Math.max(a, CLAMP_MIN), CLAMP_MAX);
    }
    return out;
  }

  scaleModelInput(sample: HostTensor): HostTensor {
    return sample;
  }

  /** `linspace(1, 0, n + 1)` in float32, or the given timesteps (cast to float32 unless already). */
  setTimesteps(schedule: number | { timesteps: ArrayLike<number> }): void {
    if (typeof schedule === 'number') {
      if (!Number.isInteger(schedule) || schedule < 1) {
        throw new RangeError(`setTimesteps: numInferenceSteps must be a positive integer, got ${schedule}`);
      }
      this.timesteps = torchLinspaceF32(1.0, 0.0, schedule + 1);
    } else {
      if (schedule.timesteps.length < 2) throw new RangeError('setTimesteps: need at least two timesteps');
      this.timesteps = Float32Array.from(schedule.timesteps);
    }
  }

  /** The schedule entry after the one nearest to `timestep[0]`, repeated for each batch item. */
  previousTimestep(timestep: ArrayLike<number>): Float32Array {
    const t0 = f(timestep[0]);
    let index = 0;
    let best = Infinity;
    this.timesteps.forEach((t, i) => {
      const distance = Math.abs(f(t - t0));
      if (distance < best) [best, index] = [distance, i];
    });
    if (index + 1 >= this.timesteps.length) {
      throw new RangeError(`previousTimestep: timestep ${t0} is the last of the schedule; there is no step after it`);
    }
    return new Float32Array(timestep.length).fill(this.timesteps[index + 1]);
  }

  /** The scalars of `step` for each batch item; see `StepCoefficients` for the update they define. */
  stepCoefficients(timestep: ArrayLike<number>): StepCoefficients {
    const t = Float32Array.from(timestep);
    const prevT = this.previousTimestep(t);
    const alphaCumprod = this._alphaCumprod(t);
    const alphaCumprodPrev = this._alphaCumprod(prevT);
    const batch = t.length;
    const c = {
      sqrtRecipAlpha: new Float32Array(batch),
      oneMinusAlpha: new Float32Array(batch),
      sqrtOneMinusAlphaCumprod: new Float32Array(batch),
      noiseStd: new Float32Array(batch),
    };
    for (let b = 0; b < batch; b++) {
      const alpha = f(alphaCumprod[b] / alphaCumprodPrev[b]);
      const oneMinusAlphaCumprod = f(1 - alphaCumprod[b]);
      c.sqrtRecipAlpha[b] = f(Math.sqrt(f(1 / alpha)));
      c.oneMinusAlpha[b] = f(1 - alpha);
      c.sqrtOneMinusAlphaCumprod[b] = f(Math.sqrt(oneMinusAlphaCumprod));
      const variance = f(f(c.oneMinusAlpha[b] * f(1 - alphaCumprodPrev[b])) / oneMinusAlphaCumprod);
      c.noiseStd[b] = prevT[b] !== 0 ? f(Math.sqrt(variance)) : 0;
    }
    return { timestep: t, prevTimestep: prevT, alphaCumprod, alphaCumprodPrev, ...c };
  }

  /**
   * One reverse-diffusion step x_t → x_{t−1}. `timestep` is a number or one value per batch item
   * (diffusers passes `t.expand(B)`). Noise, like diffusers' `randn_tensor` inside `step`, is drawn
   * from the generator(s) even on the final step, so the generator stream matches diffusers.
   */
  step(modelOutput: HostTensor, timestep: number | ArrayLike<number>, sample: HostTensor, noise: StepNoise): HostTensor {
    const shape = sample.shape;
    const size = numel(shape);
    if (modelOutput.data.length !== size || modelOutput.shape.length !== shape.length) {
      throw new RangeError(`step: model output [${modelOutput.shape.join(', ')}] does not match sample [${shape.join(', ')}]`);
    }
    const batch = shape[0];
    const t = typeof timestep === 'number' ? new Float32Array(batch).fill(timestep) : timestep;
    if (t.length !== batch) throw new RangeError(`step: ${t.length} timesteps for a batch of ${batch}`);
    const noiseTensor = noise instanceof TorchGenerator || Array.isArray(noise) ? randnTensor(shape, noise) : (noise as HostTensor);
    if (noiseTensor.data.length !== size) {
      throw new RangeError(`step: noise [${noiseTensor.shape.join(', ')}] does not match sample [${shape.join(', ')}]`);
    }
    const c = this.stepCoefficients(t);
    const x = sample.data;
    const eps = modelOutput.data;
    const z = noiseTensor.data;
    const out = new Float32Array(size);
    const itemSize = size / batch;
    for (let b = 0; b < batch; b++) {
      const [a, k, d, sd] = [c.sqrtRecipAlpha[b], c.oneMinusAlpha[b], c.sqrtOneMinusAlphaCumprod[b], c.noiseStd[b]];
      for (let i = b * itemSize; i < (b + 1) * itemSize; i++) {
        const mu = f(a * f(x[i] - f(f(k * eps[i]) / d)));
        out[i] = f(mu + f(sd * z[i]));
      }
    }
    return { shape: [...shape], data: out };
  }

  /** Forward diffusion: √ᾱ(t)·x + √(1 − ᾱ(t))·noise, one timestep per batch item. */
  addNoise(originalSamples: HostTensor, noise: HostTensor, timesteps: ArrayLike<number>): HostTensor {
    const { shape, data } = originalSamples;
    const batch = shape[0];
    if (timesteps.length !== batch) throw new RangeError(`addNoise: ${timesteps.length} timesteps for a batch of ${batch}`);
    if (noise.data.length !== data.length) {
      throw new RangeError(`addNoise: noise [${noise.shape.join(', ')}] does not match samples [${shape.join(', ')}]`);
    }
    const alphaCumprod = this._alphaCumprod(timesteps);
    const out = new Float32Array(data.length);
    const itemSize = data.length / batch;
    for (let b = 0; b < batch; b++) {
      const signal = f(Math.sqrt(alphaCumprod[b]));
      const noiseScale = f(Math.sqrt(f(1 - alphaCumprod[b])));
      for (let i = b * itemSize; i < (b + 1) * itemSize; i++) out[i] = f(f(signal * data[i]) + f(noiseScale * noise.data[i]));
    }
    return { shape: [...shape], data: out };
  }
}
