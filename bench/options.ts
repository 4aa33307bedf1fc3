/**
 * Command-line flags shared by the suites:
 *   --full        the models at full depth and every GEMM variant (for a real GPU: on the 2-core
 *                 software GPU the full Stage C forward alone takes minutes)
 *   --quick       the default: the models keep their real widths, token counts and image sizes but
 *                 only a few of their repeated blocks (see models.ts), so `npm run bench` on a
 *                 software GPU finishes in a few minutes; GFLOP/s stay comparable, times do not
 *   --dtype f32|f16   weights and activations of the model suites (default f16; f32 storage where
 *                 the adapter lacks shader-f16)
 *   --runs N      timed forwards per model after the first, compiling one (default 1 quick, 3 full)
 */
import type { DType } from '../src/runtime/dtype.js';

export interface BenchOptions {
  full: boolean;
  dtype: DType;
  runs: number;
}

export function parseBenchOptions(flags: readonly string[]): BenchOptions {
  const options: BenchOptions = { full: false, dtype: 'f16', runs: 0 };
  for (let i = 0; i < flags.length; i++) {
    const flag = flags[i];
    if (flag === '--full') options.full = true;
    else if (flag === '--quick') options.full = false;
    else if (flag === '--dtype') {
      const value = flags[++i];
      if (value !== 'f32' && value !== 'f16') throw new Error(`--dtype must be f32 or f16, got ${value}`);
      options.dtype = value;
    } else if (flag === '--runs') {
      const value = Number(flags[++i]);
      if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--runs must be a positive integer, got ${flags[i]}`);
      options.runs = value;
    } else {
      throw new Error(`unknown bench flag ${flag} (known: --full --quick --dtype f32|f16 --runs N)`);
    }
  }
  options.runs ||= options.full ? 3 : 1;
  return options;
}

/** Splits argv into suite names and flags (with their values). */
export function splitArgs(argv: readonly string[]): { names: string[]; flags: string[] } {
  const names: string[] = [];
  const flags: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) names.push(argv[i]);
    else {
      flags.push(argv[i]);
      if (argv[i] === '--dtype' || argv[i] === '--runs') flags.push(argv[++i]);
    }
  }
  return { names, flags };
}
