/**
 * Where a forward's GPU time goes, by kernel: CLIP-bigG with 4 layers (2 × 77 tokens), one Stage C
 * block (ResBlock, TimestepBlock, AttnBlock at 24×24, batch 2), Stage B with one block per level
 * and the VQGAN decode with 2 bottleneck blocks (512² image), each dispatch in its own submit, timed
 * by when the queue reports that submit done (the GPU stays busy, so the gaps between completions
 * are the dispatches' run times). The per-submit waits add a little to each, so the shares matter
 * more than the sum. That holds only where the GPU is slower than recording, as on a CPU-emulated
 * adapter: on an H100 the completions arrive in bunches at Dawn's polls and the gaps measure nothing.
 */
import { isCpuEmulated } from '../src/ops/device_traits.js';
import { Runtime } from '../src/runtime/device.js';
import type { BenchOptions } from './options.js';
import type { BenchRow } from './report.js';
import { clipTextEncoder, stageB, stageC, vqganDecoder, type SyntheticComponent } from './synthetic_models.js';
import { settle } from './timing.js';

/** GPU milliseconds per dispatch label over one forward (a measurement hook on the recorder). */
async function profileForward(rt: Runtime, forward: () => Promise<void>): Promise<Map<string, { ms: number; count: number }>> {
  const done: Promise<[string, number]>[] = [];
  const dispatch = rt.recorder.dispatch.bind(rt.recorder);
  rt.recorder.dispatch = (d) => {
    dispatch(d); // submits at once: the Runtime was made with batchSize 1
    done.push(rt.device.queue.onSubmittedWorkDone().then(() => [d.label, performance.now()]));
  };
  await settle(rt);
  let last = performance.now();
  await forward();
  const byLabel = new Map<string, { ms: number; count: number }>();
  for (const [label, at] of await Promise.all(done)) {
    const entry = byLabel.get(label) ?? { ms: 0, count: 0 };
    entry.ms += at - last;
    entry.count++;
    byLabel.set(label, entry);
    last = at;
  }
  rt.recorder.dispatch = dispatch;
  return byLabel;
}

async function profileComponent(component: SyntheticComponent, options: BenchOptions): Promise<BenchRow[]> {
  const rt = await Runtime.create({ batchSize: 1 });
  try {
    const model = await component.load(rt, options.dtype);
    await model.forward(); // compiles every pipeline first
    await settle(rt);
    const byLabel = await profileForward(rt, model.forward);
    model.dispose();
    const total = [...byLabel.values()].reduce((sum, e) => sum + e.ms, 0);
    return [...byLabel.entries()]
      .sort((a, b) => b[1].ms - a[1].ms)
      .map(([label, { ms, count }]) => ({
        suite: 'profile',
        name: `${component.name}: ${label}`,
        shape: component.shape,
        dtype: rt.storageDType(options.dtype),
        ms,
        note: `${((100 * ms) / total).toFixed(1)}% of ${total.toFixed(0)} ms; ${count} dispatches; ${component.reduced}`,
      }));
  } finally {
    rt.destroy();
  }
}

export async function benchProfile(rt: Runtime, options: BenchOptions): Promise<BenchRow[]> {
  if (!isCpuEmulated(rt.adapterInfo)) {
    console.log('profile: skipped; completion times measure kernels only on a CPU-emulated adapter (see bench/profile.ts)');
    return [];
  }
  const components = [
    await clipTextEncoder('CLIP-bigG text encoder (stage C)', 'text_encoder_prior_bigG.json', 4),
    await stageC(1),
    await stageB([1, 1, 1, 1]),
    await vqganDecoder(2),
  ];
  const rows: BenchRow[] = [];
  for (const component of components) rows.push(...(await profileComponent(component, options)));
  return rows;
}
