/** Host-side layout conversion for comparing NHWC device tensors with NCHW golden data. */

/** [B, C, H, W] values → [B, H, W, C]. */
export function nchwToNhwc(data: ArrayLike<number>, [b, c, h, w]: readonly number[]): Float32Array {
  const out = new Float32Array(b * c * h * w);
  for (let n = 0; n < b; n++)
    for (let ch = 0; ch < c; ch++)
      for (let p = 0; p < h * w; p++) out[(n * h * w + p) * c + ch] = data[(n * c + ch) * h * w + p];
  return out;
}

/** [B, H, W, C] values → [B, C, H, W]. */
export function nhwcToNchw(data: ArrayLike<number>, [b, h, w, c]: readonly number[]): Float32Array {
  const out = new Float32Array(b * c * h * w);
  for (let n = 0; n < b; n++)
    for (let ch = 0; ch < c; ch++)
      for (let p = 0; p < h * w; p++) out[(n * c + ch) * h * w + p] = data[(n * h * w + p) * c + ch];
  return out;
}
