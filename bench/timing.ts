/** Kernel timing: back-to-back runs between two waits for the queue, so dispatch gaps are included. */
import { isCpuEmulated } from '../src/ops/device_traits.js';
import type { Runtime } from '../src/runtime/device.js';

/** Waits for the GPU without the runtime's learned sleep, which would add to the measured time. */
export async function settle(rt: Runtime): Promise<void> {
  rt.flush();
  await rt.device.queue.onSubmittedWorkDone();
  rt.checkErrors();
}

/**
 * The best of one timed run and `trials` batches of back-to-back runs, in ms per run; the first run
 * (compilation) is untimed. A batch repeats the op until about `batchMs` have passed (at least once,
 * at most 50 times). On a software GPU a batch sleeps before it waits, as `timeForward` does.
 */
export async function msPerRun(rt: Runtime, run: () => void, { trials = 3, batchMs = 200 } = {}): Promise<number> {
  run();
  await settle(rt);
  const t0 = performance.now();
  run();
  await settle(rt);
  const first = performance.now() - t0;
  const reps = Math.max(1, Math.min(50, Math.ceil(batchMs / first)));
  const sleeper = await Sleeper.for(rt);
  let best = first;
  for (let kept = 0, attempt = 0; kept < trials && attempt < trials + 8; attempt++) {
    const batch = await sleeper.time(() => {
      for (let i = 0; i < reps; i++) run();
    }, best * reps);
    if (batch.overslept) continue;
    kept++;
    best = Math.min(best, batch.ms / reps);
  }
  return best;
}

/** Cheap deterministic values in [-0.5, 0.5): timings do not depend on them, only finiteness does. */
export function pattern(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ((i * 0.6180339887 + seed * 0.31) % 1) - 0.5;
  return out;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The longest of a few waits on an idle queue: what a wait costs once the work is done. */
async function idleWaitMs(rt: Runtime): Promise<number> {
  let worst = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await settle(rt);
    worst = Math.max(worst, performance.now() - t0);
  }
  return worst;
}

/**
 * Times recorded GPU work up to its completion. On a software GPU it first sleeps for part of the
 * expected time (70%, then 10 points more after each run that did not oversleep, up to 90%), so
 * the wait spins a core the GPU computes on as briefly as possible; a run whose work was done on
 * waking (its wait took no longer than one on an idle queue) overslept: the caller discards it
 * and the next sleeps half as long. A hardware GPU's runs wait directly.
 */
class Sleeper {
  private constructor(
    private readonly rt: Runtime,
    private readonly floorMs: number,
    private factor: number,
  ) {}

  static async for(rt: Runtime): Promise<Sleeper> {
    const sleeps = isCpuEmulated(rt.adapterInfo);
    return new Sleeper(rt, sleeps ? 2 * (await idleWaitMs(rt)) + 1 : 0, sleeps ? 0.7 : 0);
  }

  async time(record: () => void | Promise<void>, expectedMs: number) {
    const t0 = performance.now();
    await record();
    // Submit the last partial batch before sleeping, or it would wait for the wake-up.
    this.rt.flush();
    const recorded = performance.now();
    const left = this.factor * expectedMs - (recorded - t0);
    if (left > 0) await sleep(left);
    const woke = performance.now();
    await settle(this.rt);
    const end = performance.now();
    const overslept = left > 0 && end - woke <= this.floorMs;
    if (overslept) this.factor /= 2;
    else if (this.factor > 0) this.factor = Math.min(0.9, this.factor + 0.1);
    return { ms: end - t0, recordMs: recorded - t0, overslept };
  }
}

export interface ForwardTiming {
  /** The first run, pipeline compilation included. */
  firstMs: number;
  /** Median of the warm runs: recording plus waiting for the GPU. */
  ms: number;
  /** Of `ms`, the CPU time spent recording (the median run's). */
  recordMs: number;
}

/**
 * Times `fn` (recording work on the GPU) plus the wait for it: once cold and then `runs` times warm,
 * sleeping first as `Sleeper` says. On a hardware GPU one more untimed run comes first: the second
 * run still creates most of its bind groups (the pool has just settled on which buffers it hands
 * out), which on an H100 doubled Stage B's recording, and a GPU-bound median could pick that run.
 */
export async function timeForward(rt: Runtime, fn: () => Promise<void>, runs: number): Promise<ForwardTiming> {
  const t0 = performance.now();
  await fn();
  await settle(rt);
  const firstMs = performance.now() - t0;
  if (!isCpuEmulated(rt.adapterInfo)) {
    await fn();
    await settle(rt);
  }
  const sleeper = await Sleeper.for(rt);
  let guide = firstMs;
  const warm: { ms: number; recordMs: number }[] = [];
  for (let attempt = 0; warm.length < runs && attempt < runs + 8; attempt++) {
    const run = await sleeper.time(fn, guide);
    if (run.overslept) continue;
    warm.push(run);
    guide = Math.min(guide, run.ms);
  }
  if (!warm.length) throw new Error('timeForward: every warm run overslept');
  warm.sort((a, b) => a.ms - b.ms);
  const median = warm[Math.floor(warm.length / 2)];
  return { firstMs, ms: median.ms, recordMs: median.recordMs };
}
