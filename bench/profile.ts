/**
 * Where a forward's GPU time goes, by kernel: CLIP-bigG with 4 layers (2 × 77 tokens), one Stage C
 * block (ResBlock, TimestepBlock, AttnBlock at 24×24, batch 2), Stage B with one block per level
 * and the VQGAN decode with 2 bottleneck blocks (512² image). Each dispatch is timed by the GPU's
 * own timestamps (`timestamp-query`, a compute pass per dispatch: `DispatchTimer`), so the figures
 * hold on a fast GPU too; adapters without the feature are skipped.
 */
import { Runtime } from '../src/runtime/device.js';
import { DispatchTimer } from '../src/runtime/recorder.js';
import type { BenchOptions } from './options.js';
import type { BenchRow } from './report.js';
import { clipTextEncoder, stageB, stageC, vqganDecoder, type SyntheticComponent } from './synthetic_models.js';
import { settle } from './timing.js';

/** GPU milliseconds per dispatch label over one forward. */
async function profileForward(rt: Runtime, forward: () => Promise<void>): Promise<Map<string, { ms: number; count: number }>> {
  const before = rt.recorder.dispatches;
  await forward(); // counts the dispatches (and compiles every pipeline)
  await settle(rt);
  const timer = new DispatchTimer(rt.device, rt.recorder.dispatches - before);
  rt.recorder.timer = timer;
  try {
    await forward();
    await settle(rt);
  } finally {
    rt.recorder.timer = null;
  }
  const byLabel = new Map<string, { ms: number; count: number }>();
  for (const { label, ms } of await timer.read()) {
    const entry = byLabel.get(label) ?? { ms: 0, count: 0 };
    entry.ms += ms;
    entry.count++;
    byLabel.set(label, entry);
  }
  return byLabel;
}

async function profileComponent(component: SyntheticComponent, options: BenchOptions): Promise<BenchRow[]> {
  const rt = await Runtime.create({ timestamps: true });
  try {
    const model = await component.load(rt, options.dtype);
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
  if (!rt.gpu.adapter.features.has('timestamp-query')) {
    console.log('profile: skipped; this adapter offers no timestamp-query');
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
