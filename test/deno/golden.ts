// Golden comparisons for the Deno suite (the vitest helpers import vitest, which Deno does not run).

export const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;

export interface Tolerance {
  atol: number;
  rtol: number;
}

/** ../shared/golden/README.md §2: max|a − ref| ≤ atol + rtol · max|ref|, reporting the worst index. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, what: string): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  let maxRef = 0;
  let worst = 0;
  let worstErr = 0;
  for (let i = 0; i < expected.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= worstErr)) {
      worstErr = Number.isNaN(err) ? Infinity : err;
      worst = i;
    }
  }
  const bound = tol.atol + tol.rtol * maxRef;
  if (!(worstErr <= bound)) {
    throw new Error(`${what}: max|err| ${worstErr.toExponential(3)} > ${bound.toExponential(3)} at index ${worst}: got ${actual[worst]}, expected ${expected[worst]}`);
  }
}

export function assertExact(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) throw new Error(`${what}: index ${i} is ${actual[i]}, expected exactly ${expected[i]}`);
  }
}

export function assertShape(actual: readonly number[], expected: readonly number[], what: string): void {
  if (actual.join() !== expected.join()) throw new Error(`${what}: shape [${actual.join(', ')}], expected [${expected.join(', ')}]`);
}
