/**
 * Mirrors `log256_ps` and `sincos256_ps` of ATen's aten/src/ATen/native/cpu/avx_mathfun.h (the
 * cephes float32 polynomials torch's CPU `randn` uses), one lane at a time, bit-exactly.
 *
 * Every operation is rounded to float32 as the AVX instruction would be. Where GCC contracts a
 * `_mm256_mul_ps` feeding a `_mm256_add_ps`/`_mm256_sub_ps` into one FMA (it does so for the
 * x86-64 AVX2 build of torch 1.13), `fmaF32` is used instead; the comments mark those places.
 */

const f64 = new Float64Array(1);
const f64Words = new Uint32Array(f64.buffer);
const LOW = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;
const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

/**
 * float32 fused multiply-add `a·b + c` with a single rounding. The product of two float32 values
 * is exact in float64; the sum is formed with round-to-odd so that the final rounding to float32
 * cannot suffer from double rounding.
 */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const pv = s - c;
  const err = p - pv + (c - (s - pv));
  if (err === 0 || !Number.isFinite(s)) return Math.fround(s);
  f64[0] = s;
  if ((f64Words[LOW] & 1) === 0) {
    // s is even: step one float64 ulp towards the exact sum to make it the odd neighbour.
    if (err > 0 === s > 0) {
      f64Words[LOW] |= 1;
    } else if (f64Words[LOW] === 0) {
      f64Words[1 - LOW] -= 1;
      f64Words[LOW] = 0xffffffff;
    } else {
      f64Words[LOW] -= 1;
    }
  }
  return Math.fround(f64[0]);
}

/** Smallest positive normal float32 (`min_norm_pos`): log256_ps cuts denormal inputs off there. */
const MIN_NORM_POS = 2 ** -126;
const SQRTHF = Math.fround(0.707106781186547524);
const LOG_P0 = Math.fround(7.0376836292e-2);
const LOG_P1 = Math.fround(-1.151461031e-1);
const LOG_P2 = Math.fround(1.167699874e-1);
const LOG_P3 = Math.fround(-1.2420140846e-1);
const LOG_P4 = Math.fround(1.4249322787e-1);
const LOG_P5 = Math.fround(-1.6668057665e-1);
const LOG_P6 = Math.fround(2.0000714765e-1);
const LOG_P7 = Math.fround(-2.4999993993e-1);
const LOG_P8 = Math.fround(3.3333331174e-1);
const LOG_Q1 = Math.fround(-2.1219444e-4);
const LOG_Q2 = Math.fround(0.693359375);

/** `log256_ps` for one positive, finite float32 lane. */
export function log256(value: number): number {
  f32[0] = Math.max(value, MIN_NORM_POS);
  const bits = f32Bits[0];
  let e = (bits >>> 23) - 0x7f + 1;
  f32Bits[0] = (bits & ~0x7f800000) | 0x3f000000; // mantissa with the exponent of 0.5
  let x = f32[0];
  const below = x < SQRTHF;
  const tmp = below ? x : 0;
  x = Math.fround(x - 1);
  if (below) e -= 1;
  x = Math.fround(x + tmp);

  const z = Math.fround(x * x);
  let y = fmaF32(LOG_P0, x, LOG_P1); // contracted: y*x + p
  y = fmaF32(y, x, LOG_P2);
  y = fmaF32(y, x, LOG_P3);
  y = fmaF32(y, x, LOG_P4);
  y = fmaF32(y, x, LOG_P5);
  y = fmaF32(y, x, LOG_P6);
  y = fmaF32(y, x, LOG_P7);
  y = fmaF32(y, x, LOG_P8);
  y = Math.fround(y * x);
  y = fmaF32(y, z, Math.fround(e * LOG_Q1)); // contracted: y*z + e*q1
  y = Math.fround(y - z * 0.5); // z*0.5 is exact: no contraction to model
  x = Math.fround(x + y);
  return fmaF32(e, LOG_Q2, x); // contracted: x + e*q2
}

const DP1 = -0.78515625;
const DP2 = Math.fround(-2.4187564849853515625e-4);
const DP3 = Math.fround(-3.77489497744594108e-8);
const SINCOF_P0 = Math.fround(-1.9515295891e-4);
const SINCOF_P1 = Math.fround(8.3321608736e-3);
const SINCOF_P2 = Math.fround(-1.6666654611e-1);
const COSCOF_P0 = Math.fround(2.443315711809948e-5);
const COSCOF_P1 = Math.fround(-1.388731625493765e-3);
const COSCOF_P2 = Math.fround(4.166664568298827e-2);
const FOPI = Math.fround(1.27323954473516);

export interface SinCos {
  sin: number;
  cos: number;
}

/** `sincos256_ps` for one finite float32 lane with |x| < 2³¹·π/4. */
export function sincos256(value: number): SinCos {
  const negative = value < 0 || Object.is(value, -0);
  let x = Math.abs(value);
  let j = Math.trunc(Math.fround(x * FOPI));
  j = (j + 1) & ~1;
  const y = j;
  const sinSwap = (j & 4) !== 0;
  const sinUsesSinPoly = (j & 2) === 0;
  const cosNegative = (~(j - 2) & 4) !== 0;
  const sinNegative = negative !== sinSwap;

  // Extended precision modular arithmetic, each step contracted: x + y*DPk.
  x = fmaF32(y, DP1, x);
  x = fmaF32(y, DP2, x);
  x = fmaF32(y, DP3, x);

  const z = Math.fround(x * x);
  let c = fmaF32(COSCOF_P0, z, COSCOF_P1);
  c = fmaF32(c, z, COSCOF_P2);
  c = Math.fround(c * z);
  c = fmaF32(c, z, -(z * 0.5)); // contracted: c*z - z*0.5
  c = Math.fround(c + 1);

  let s = fmaF32(SINCOF_P0, z, SINCOF_P1);
  s = fmaF32(s, z, SINCOF_P2);
  s = Math.fround(s * z);
  s = fmaF32(s, x, x); // contracted: s*x + x

  const sinAbs = sinUsesSinPoly ? s : c;
  const cosAbs = sinUsesSinPoly ? c : s;
  return { sin: sinNegative ? -sinAbs : sinAbs, cos: cosNegative ? -cosAbs : cosAbs };
}
