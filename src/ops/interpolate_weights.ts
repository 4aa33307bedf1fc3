/**
 * Per-axis filter tables of torch's antialiased bicubic resize (`F.interpolate(mode='bicubic',
 * antialias=True, align_corners=True)`, torch 1.13 aten/src/ATen/native/cpu/UpSampleKernel.cpp:
 * `HelperInterpBase::_compute_indices_weights_aa` / `_compute_weights_aa`, `HelperInterpCubic::aa_filter`).
 * ATen evaluates them in the input's scalar type; every step here is rounded to f32 the same way
 * (`Math.fround` where C++ stores a float, plain doubles where C++ computes in double).
 */

const f32 = Math.fround;

/** Keys' cubic convolution kernel with a = −0.5 (Pillow's; plain non-antialiased bicubic uses −0.75). */
function cubicFilter(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return f32(f32(f32(f32(f32((a + 2) * t) - (a + 3)) * t) * t) + 1);
  if (t < 2) return f32(f32(f32(f32(f32(f32(a * t) - 5 * a) * t) + 8 * a) * t) - 4 * a);
  return 0;
}

export interface AxisTaps {
  /** Width of one table row's weight part: torch's `interp_size = ceil(support)·2 + 1`. */
  taps: number;
  /**
   * One row of `taps + 2` values per output index: first input index, number of inputs used,
   * then the normalised weights (zero-padded). Indices are small integers, exact in f32.
   */
  table: Float32Array;
}

/** Filter table resizing one axis from `inSize` to `outSize` samples. */
export function bicubicAntialiasTaps(inSize: number, outSize: number): AxisTaps {
  if (!(Number.isInteger(inSize) && Number.isInteger(outSize) && inSize > 0 && outSize > 0)) {
    throw new Error(`interpolate: sizes must be positive integers, got ${inSize} → ${outSize}`);
  }
  // area_pixel_compute_scale with align_corners: (in − 1)/(out − 1), and 0 for a single output.
  const scale = outSize > 1 ? f32((inSize - 1) / (outSize - 1)) : 0;
  // Downsampling widens the kernel by the scale (the antialiasing); upsampling keeps 2 samples a side.
  const support = scale >= 1 ? f32(2 * scale) : 2;
  const invscale = scale >= 1 ? f32(1 / scale) : 1;
  const taps = Math.ceil(support) * 2 + 1;
  const stride = taps + 2;
  const table = new Float32Array(outSize * stride);
  const weights = new Float32Array(taps);
  for (let i = 0; i < outSize; i++) {
    // torch 1.13 centres every output on scale·(i + 0.5) even with align_corners; only the scale changes.
    const center = f32(scale * (i + 0.5));
    const xmin = Math.max(Math.trunc(f32(center - support) + 0.5), 0);
    const xsize = Math.min(Math.trunc(f32(center + support) + 0.5), inSize) - xmin;
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      weights[j] = cubicFilter(f32((f32(j + xmin - center) + 0.5) * invscale));
      total = f32(total + weights[j]);
    }
    const row = i * stride;
    table[row] = xmin;
    table[row + 1] = xsize;
    for (let j = 0; j < xsize; j++) table[row + 2 + j] = total !== 0 ? f32(weights[j] / total) : weights[j];
  }
  return { taps, table };
}
