import { expect } from 'vitest';

export interface Tolerance {
  atol: number;
  rtol: number;
}

/**
 * The golden criterion (../shared/golden/README.md §2): max|a − ref| ≤ atol + rtol · max|ref|.
 * Reports the worst index so a failure says where.
 */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, what = 'tensor'): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) maxRef = Math.max(maxRef, Math.abs(expected[i]));
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= worstErr) || Number.isNaN(err)) {
      worstErr = Number.isNaN(err) ? Infinity : err;
      worst = i;
    }
  }
  const bound = tol.atol + tol.rtol * maxRef;
  if (!(worstErr <= bound)) {
    throw new Error(
      `${what}: max|err| ${worstErr.toExponential(3)} > ${bound.toExponential(3)} (atol ${tol.atol}, rtol ${tol.rtol}, ` +
        `max|ref| ${maxRef.toExponential(3)}) at index ${worst}: got ${actual[worst]}, expected ${expected[worst]}`,
    );
  }
}
