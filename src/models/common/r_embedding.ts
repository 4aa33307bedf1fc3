/**
 * The timestep ("r") embedding of WuerstchenPrior.gen_r_embedding / WuerstchenDiffNeXt.gen_r_embedding
 * (diffusers v0.21.0), computed on the host exactly as torch does on the CPU:
 *
 *   r = r * max_positions
 *   f = exp(arange(c_r // 2).float() * -(ln(max_positions) / (c_r // 2 − 1)))
 *   emb = cat([sin(r[:, None] * f), cos(r[:, None] * f)], 1), zero-padded by one column for odd c_r
 *
 * The arguments reach ~1e4 rad where one f32 ulp is ~1e-3 rad, so every f32 step must match torch:
 * one ulp off in a frequency moves sin/cos by ~5e-4. torch's vectorized exp is SLEEF's expf_u10,
 * which is not correctly rounded (f[1] for c_r = 64 is one ulp below exp's true rounding), so it
 * is reproduced here operation by operation. sin/cos of the f32 arguments are then taken
 * correctly rounded; SLEEF's sinf/cosf_u10 differ from that by at most one ulp of the result.
 */
import { fmaF32 } from '../../pipeline/avx_mathfun.js';

const R_LN2 = Math.fround(1.442695040888963407359924681001892137426645954152985934135449406931);
const L2U = Math.fround(0.693145751953125);
const L2L = Math.fround(1.428606765330187045e-6);
const EXP_POLY = [
  0.000198527617612853646278381, 0.00139304355252534151077271, 0.00833336077630519866943359,
  0.0416664853692054748535156, 0.166666671633720397949219, 0.5,
].map(Math.fround);

/** SLEEF xexpf (expf_u10) for one lane as built with FMA (AVX2/AVX-512 torch), for |d| < 100. */
function sleefExpf(d: number): number {
  // vrint: round to nearest, ties to even (cvtps_epi32).
  const qf = Math.fround(d * R_LN2);
  let q = Math.round(qf);
  if (Math.abs(qf % 1) === 0.5 && q % 2 !== 0) q -= 1;
  let s = fmaF32(q, -L2U, d);
  s = fmaF32(q, -L2L, s);
  let u = EXP_POLY[0];
  for (let i = 1; i < EXP_POLY.length; i++) u = fmaF32(u, s, EXP_POLY[i]);
  u = Math.fround(1 + fmaF32(Math.fround(s * s), u, s));
  // vldexp2: two power-of-two scalings, so q down to −150 still lands on subnormals correctly.
  const half = q >> 1;
  return Math.fround(Math.fround(u * 2 ** half) * 2 ** (q - half));
}

/** The embedding [B, cR] (row-major) of the B values `r` (f32), as float32. */
export function genREmbedding(r: Float32Array, cR: number, maxPositions = 10000): Float32Array {
  const half = Math.floor(cR / 2);
  if (!Number.isInteger(cR) || half < 2) throw new Error(`genREmbedding: c_r must be an integer ≥ 4, got ${cR}`);
  // torch turns the Python float into an f32 scalar before the multiply.
  const step = Math.fround(-(Math.log(maxPositions) / (half - 1)));
  const freqs = Float32Array.from({ length: half }, (_, i) => sleefExpf(Math.fround(i * step)));
  const out = new Float32Array(r.length * cR);
  r.forEach((value, b) => {
    const scaled = Math.fround(value * Math.fround(maxPositions));
    for (let i = 0; i < half; i++) {
      const arg = Math.fround(scaled * freqs[i]);
      out[b * cR + i] = Math.sin(arg);
      out[b * cR + half + i] = Math.cos(arg);
    }
  });
  return out;
}
