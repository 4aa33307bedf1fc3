/**
 * torch 1.13's CPU generator (`torch.Generator()`, `torch.manual_seed`) with `torch.randn` and
 * `torch.rand` for float32, reproduced bit-exactly, plus diffusers' `randn_tensor` for CPU
 * generators (diffusers/utils/torch_utils.py). A seed therefore gives the same noise here as in a
 * diffusers pipeline run with `generator=torch.Generator("cpu").manual_seed(seed)`.
 *
 * Sources mirrored: aten/src/ATen/CPUGeneratorImpl.cpp (seeding, cached normal),
 * aten/src/ATen/core/DistributionsHelper.h (uniform/normal distributions),
 * aten/src/ATen/native/cpu/DistributionTemplates.h and DistributionKernels.cpp (`normal_kernel`,
 * `normal_fill_AVX2`, `uniform_kernel`), as built for x86-64 with AVX2 (the official wheels).
 */
import { log256, sincos256 } from './avx_mathfun.js';
import { type HostTensor, numel } from './host_tensor.js';
import { MT19937 } from './mt19937.js';

/** Seed of a `torch.Generator()` that was never seeded explicitly (`default_rng_seed_val`). */
export const TORCH_DEFAULT_SEED = 67280421310721n;

const TWO_POW_M24 = 2 ** -24;
const TWO_POW_M53 = 2 ** -53;
const TWO_PI_F32 = Math.fround(2 * Math.PI);
/** Tensors with at least this many elements take the vectorised Box–Muller path. */
const NORMAL_FILL_BLOCK = 16;

export type Seed = number | bigint;

export class TorchGenerator {
  private engine!: MT19937;
  private seed!: bigint;
  /** `next_double_normal_sample_`: the second Box–Muller value of the scalar path. */
  private cachedNormal: number | undefined;

  constructor(seed: Seed = TORCH_DEFAULT_SEED) {
    this.manualSeed(seed);
  }

  /** Like `torch.Generator.manual_seed`: restarts the stream and drops the cached normal. */
  manualSeed(seed: Seed): this {
    if (typeof seed === 'number' && !Number.isSafeInteger(seed)) {
      throw new RangeError(`seed must be an integer (a bigint above 2^53), got ${seed}`);
    }
    const big = BigInt(seed);
    if (big < -(2n ** 63n) || big >= 2n ** 64n) throw new RangeError(`seed ${big} does not fit in 64 bits`);
    // torch stores the seed as uint64 and hands mt19937 its low 32 bits.
    this.seed = BigInt.asUintN(64, big);
    this.engine = new MT19937(Number(this.seed & 0xffffffffn));
    this.cachedNormal = undefined;
    return this;
  }

  /** Like `torch.Generator.initial_seed()`. */
  initialSeed(): bigint {
    return this.seed;
  }

  /** `torch.randn(shape, generator=g)` for float32, in row-major order. */
  randn(shape: readonly number[]): Float32Array {
    const n = numel(shape);
    const out = new Float32Array(n);
    if (n < NORMAL_FILL_BLOCK) {
      // `x + 0` mirrors `normal * std + mean` with std 1, mean 0, which turns −0 into +0.
      for (let i = 0; i < n; i++) out[i] = this.normalDouble() + 0;
      return out;
    }
    for (let i = 0; i < n; i++) out[i] = this.uniformFloat();
    for (let i = 0; i + NORMAL_FILL_BLOCK <= n; i += NORMAL_FILL_BLOCK) boxMuller16(out, i);
    if (n % NORMAL_FILL_BLOCK !== 0) {
      // torch redraws the last 16 slots (overwriting finished values) and transforms them again.
      const start = n - NORMAL_FILL_BLOCK;
      for (let i = start; i < n; i++) out[i] = this.uniformFloat();
      boxMuller16(out, start);
    }
    return out;
  }

  /** `torch.rand(shape, generator=g)` for float32: uniform on [0, 1). */
  rand(shape: readonly number[]): Float32Array {
    const out = new Float32Array(numel(shape));
    for (let i = 0; i < out.length; i++) out[i] = this.uniformFloat();
    return out;
  }

  /** `uniform_real_distribution<float>(0, 1)`: 24 random bits of one draw. */
  private uniformFloat(): number {
    return (this.engine.nextU32() & 0xffffff) * TWO_POW_M24;
  }

  /** `uniform_real_distribution<double>(0, 1)`: 53 bits of `(hi << 32) | lo`, hi drawn first. */
  private uniformDouble(): number {
    const hi = this.engine.nextU32();
    const lo = this.engine.nextU32();
    return ((hi & 0x1fffff) * 2 ** 32 + lo) * TWO_POW_M53;
  }

  /** `normal_distribution<double>(0, 1)`: Box–Muller in float64, the sine half cached. */
  private normalDouble(): number {
    if (this.cachedNormal !== undefined) {
      const cached = this.cachedNormal;
      this.cachedNormal = undefined;
      return cached;
    }
    const u1 = this.uniformDouble();
    const u2 = this.uniformDouble();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.cachedNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }
}

/**
 * `normal_fill_16_AVX2`: turns 16 uniforms d[0..16) into normals, lane j pairing d[j] with d[j+8].
 * All arithmetic is float32; `+ 0` mirrors `_mm256_fmadd_ps(n, std=1, mean=0)`.
 */
function boxMuller16(data: Float32Array, offset: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = Math.fround(1 - data[offset + j]);
    const u2 = data[offset + j + 8];
    const radius = Math.fround(Math.sqrt(Math.fround(-2 * log256(u1))));
    const theta = Math.fround(TWO_PI_F32 * u2);
    const { sin, cos } = sincos256(theta);
    data[offset + j] = Math.fround(radius * cos) + 0;
    data[offset + j + 8] = Math.fround(radius * sin) + 0;
  }
}

/**
 * diffusers' `randn_tensor(shape, generator)` on the CPU. One generator draws the whole tensor;
 * a list (one generator per batch item, length = shape[0]) draws each item with its own
 * generator and concatenates them along dim 0; a list of one acts as that generator.
 */
export function randnTensor(
  shape: readonly number[],
  generator: TorchGenerator | readonly TorchGenerator[],
): HostTensor {
  const single = generator instanceof TorchGenerator ? generator : generator.length === 1 ? generator[0] : undefined;
  if (single) return { shape: [...shape], data: single.randn(shape) };
  const generators = generator as readonly TorchGenerator[];
  const batch = shape[0];
  if (generators.length !== batch) {
    throw new RangeError(`randnTensor: got ${generators.length} generators for a batch of ${batch}`);
  }
  const itemShape = [1, ...shape.slice(1)];
  const itemSize = numel(itemShape);
  const data = new Float32Array(batch * itemSize);
  generators.forEach((g, i) => data.set(g.randn(itemShape), i * itemSize));
  return { shape: [...shape], data };
}
