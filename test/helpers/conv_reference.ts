/**
 * Direct float64 CPU convolutions over NHWC data with PyTorch-layout weights, for cases no golden
 * file covers. The transposed one scatters (input-major), independently of the GPU's gather form.
 */

export interface ConvReferenceOptions {
  stride: [number, number];
  padding: [number, number];
  groups: number;
  replicate: boolean;
}

/** x [B, H, W, Cin], weight [Cout, Cin/groups, kH, kW] → { NHWC values, shape }. */
export function conv2dReference(
  x: ArrayLike<number>,
  [b, h, w, cin]: readonly number[],
  weight: ArrayLike<number>,
  [cout, cinG, kh, kw]: readonly number[],
  bias: ArrayLike<number> | undefined,
  { stride, padding, groups, replicate }: ConvReferenceOptions,
): { data: Float32Array; shape: number[] } {
  const oh = Math.floor((h + 2 * padding[0] - kh) / stride[0]) + 1;
  const ow = Math.floor((w + 2 * padding[1] - kw) / stride[1]) + 1;
  const coutG = cout / groups;
  const out = new Float32Array(b * oh * ow * cout);
  const clamp = (v: number, n: number) => Math.min(Math.max(v, 0), n - 1);
  for (let n = 0; n < b; n++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let o = 0; o < cout; o++) {
          const g = Math.floor(o / coutG);
          let acc = bias ? bias[o] : 0;
          for (let ky = 0; ky < kh; ky++)
            for (let kx = 0; kx < kw; kx++) {
              let iy = oy * stride[0] - padding[0] + ky;
              let ix = ox * stride[1] - padding[1] + kx;
              if (replicate) [iy, ix] = [clamp(iy, h), clamp(ix, w)];
              else if (iy < 0 || ix < 0 || iy >= h || ix >= w) continue;
              for (let i = 0; i < cinG; i++) {
                acc += x[((n * h + iy) * w + ix) * cin + g * cinG + i] * weight[((o * cinG + i) * kh + ky) * kw + kx];
              }
            }
          out[((n * oh + oy) * ow + ox) * cout + o] = acc;
        }
  return { data: out, shape: [b, oh, ow, cout] };
}

/** x [B, H, W, Cin], weight [Cin, Cout, kH, kW] → { NHWC values, shape } (groups 1). */
export function convTranspose2dReference(
  x: ArrayLike<number>,
  [b, h, w, cin]: readonly number[],
  weight: ArrayLike<number>,
  [, cout, kh, kw]: readonly number[],
  bias: ArrayLike<number> | undefined,
  stride: [number, number],
  padding: [number, number],
): { data: Float32Array; shape: number[] } {
  const oh = (h - 1) * stride[0] - 2 * padding[0] + kh;
  const ow = (w - 1) * stride[1] - 2 * padding[1] + kw;
  const acc = new Float64Array(b * oh * ow * cout);
  for (let n = 0; n < b; n++)
    for (let iy = 0; iy < h; iy++)
      for (let ix = 0; ix < w; ix++)
        for (let ky = 0; ky < kh; ky++)
          for (let kx = 0; kx < kw; kx++) {
            const oy = iy * stride[0] - padding[0] + ky;
            const ox = ix * stride[1] - padding[1] + kx;
            if (oy < 0 || ox < 0 || oy >= oh || ox >= ow) continue;
            for (let i = 0; i < cin; i++) {
              const v = x[((n * h + iy) * w + ix) * cin + i];
              for (let o = 0; o < cout; o++) {
                acc[((n * oh + oy) * ow + ox) * cout + o] += v * weight[((i * cout + o) * kh + ky) * kw + kx];
              }
            }
          }
  const out = new Float32Array(acc.length);
  for (let p = 0; p < acc.length; p++) out[p] = acc[p] + (bias ? bias[p % cout] : 0);
  return { data: out, shape: [b, oh, ow, cout] };
}
