/**
 * Does compiling a model's pipelines up front (`createComputePipelineAsync`, all at once) shorten
 * the first forward? For Stage C and Stage B (quick depth: the kernel set does not depend on depth):
 *   1. a cold first forward on a fresh Runtime, recording every kernel variant it compiles;
 *   2. a fresh Runtime that `prepare`s those variants, then runs its first forward;
 *   3. another cold first forward, to show whether a driver-side cache favoured the later runs.
 */
import { Runtime } from '../src/runtime/device.js';
import { KernelRegistry, type KernelSpec } from '../src/runtime/kernels.js';
import type { BenchOptions } from './options.js';
import type { BenchRow } from './report.js';
import { stageB, stageC, type SyntheticComponent } from './synthetic_models.js';
import { timeForward } from './timing.js';

/** Collects the variants `rt` compiles from now on (a measurement hook: the registry keeps only pipelines). */
function recordKernels(rt: Runtime): Map<string, KernelSpec> {
  const specs = new Map<string, KernelSpec>();
  const get = rt.kernels.get.bind(rt.kernels);
  rt.kernels.get = (spec) => {
    specs.set(KernelRegistry.key(spec), spec);
    return get(spec);
  };
  return specs;
}

interface Attempt {
  dtype: string;
  firstMs: number;
  ms: number;
  prepareMs?: number;
  kernels: number;
}

async function attempt(component: SyntheticComponent, options: BenchOptions, prepare?: readonly KernelSpec[], record?: Map<string, KernelSpec>): Promise<Attempt> {
  const rt = await Runtime.create();
  try {
    const recorded = recordKernels(rt);
    const model = await component.load(rt, options.dtype);
    await rt.sync();
    let prepareMs: number | undefined;
    if (prepare) {
      const t0 = performance.now();
      await Promise.all(prepare.map((spec) => rt.kernels.prepare(spec)));
      prepareMs = performance.now() - t0;
    }
    const { firstMs, ms } = await timeForward(rt, model.forward, 1);
    model.dispose();
    for (const [key, spec] of recorded) record?.set(key, spec);
    return { dtype: rt.storageDType(options.dtype), firstMs, ms, prepareMs, kernels: prepare ? prepare.length : recorded.size };
  } finally {
    rt.destroy();
  }
}

export async function benchWarmup(_rt: Runtime, options: BenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const component of [await stageC(1), await stageB([1, 1, 1, 1])]) {
    const specs = new Map<string, KernelSpec>();
    const cold = await attempt(component, options, undefined, specs);
    const prepared = await attempt(component, options, [...specs.values()]);
    const coldAgain = await attempt(component, options);
    const row = (name: string, a: Attempt, note: string): BenchRow => ({
      suite: 'warmup',
      name: `${component.name}: ${name}`,
      shape: component.shape,
      dtype: a.dtype,
      firstMs: a.firstMs,
      ms: a.ms,
      note: `${component.reduced}; ${a.kernels} pipelines${note}`,
    });
    rows.push(
      row('cold', cold, ''),
      row('prepared up front', prepared, `; prepare ${prepared.prepareMs!.toFixed(0)} ms, first forward + prepare ${(prepared.firstMs + prepared.prepareMs!).toFixed(0)} ms`),
      row('cold again', coldAgain, ''),
    );
  }
  return rows;
}
