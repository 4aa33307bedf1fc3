/** Element types a device tensor can hold. */
export type DType = 'f32' | 'f16';

export function bytesPerElement(dtype: DType): number {
  return dtype === 'f32' ? 4 : 2;
}

const scratch = new DataView(new ArrayBuffer(4));

/**
 * IEEE binary32 bit pattern → binary16 bit pattern, rounding to nearest with ties to even, exactly as
 * torch `.half()` does: overflow goes to ±inf, f16 subnormals are produced, and every NaN becomes the
 * canonical quiet NaN 0x7E00 with the input's sign.
 */
export function f32BitsToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const biasedExp = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (biasedExp === 0xff) return sign | (mantissa === 0 ? 0x7c00 : 0x7e00);
  const exp = biasedExp - 127 + 15;
  if (exp >= 0x1f) return sign | 0x7c00;
  if (exp <= 0) {
    // Below 2^-25 (or an f32 subnormal) even the round-up cannot reach the smallest f16 subnormal.
    if (exp < -10) return sign;
    const significand = mantissa | 0x800000;
    const shift = 14 - exp;
    return sign | roundShift(significand, shift);
  }
  // A carry out of the mantissa correctly bumps the exponent, up to and including infinity.
  return sign | ((exp << 10) + roundShift(mantissa, 13));
}

/** `value >> shift` rounded to nearest, ties to even (shift in 1..24). */
function roundShift(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}

/** A number → f16 bits, rounding it to f32 first (as torch does for f64 → f16). */
export function f32ToF16Bits(value: number): number {
  scratch.setFloat32(0, value, true);
  return f32BitsToF16Bits(scratch.getUint32(0, true));
}

/** Exact (every f16 value is an f32 value); NaN payloads are kept. */
export function f16BitsToF32Bits(bits: number): number {
  const sign = (bits & 0x8000) << 16;
  const exp = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // Subnormal: mantissa · 2^-24 with its leading one at bit p becomes a normal f32 of exponent p - 24.
  const p = 31 - Math.clz32(mantissa);
  return (sign | ((p + 103) << 23) | ((mantissa << (23 - p)) & 0x7fffff)) >>> 0;
}

export function f16BitsToF32(bits: number): number {
  scratch.setUint32(0, f16BitsToF32Bits(bits), true);
  return scratch.getFloat32(0, true);
}

/** Exact: bf16 is the upper half of an f32. */
export function bf16BitsToF32(bits: number): number {
  scratch.setUint32(0, (bits & 0xffff) << 16, true);
  return scratch.getFloat32(0, true);
}

export function f32ArrayToF16Bits(values: ArrayLike<number>): Uint16Array<ArrayBuffer> {
  const out = new Uint16Array(values.length);
  if (values instanceof Float32Array) {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]);
  } else {
    for (let i = 0; i < values.length; i++) out[i] = f32ToF16Bits(values[i]);
  }
  return out;
}

export function f16BitsToF32Array(bits: Uint16Array): Float32Array<ArrayBuffer> {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16BitsToF32Bits(bits[i]);
  return new Float32Array(out.buffer);
}
