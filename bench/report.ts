/** Benchmark rows: printed as a Markdown table and appended as JSON lines under bench/results/. */
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Runtime } from '../src/runtime/device.js';

export interface BenchRow {
  suite: string;
  name: string;
  /** Problem size, e.g. "1152x1536x6144" or "24x24 b2". */
  shape: string;
  dtype: string;
  ms: number;
  gflops?: number;
  gbps?: number;
  peakBytes?: number;
  note?: string;
}

export function markdownTable(rows: readonly BenchRow[]): string {
  const head = '| suite | name | shape | dtype | ms | GFLOP/s | GB/s | peak MB | note |';
  const sep = '| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |';
  const fmt = (v: number | undefined, d = 1) => (v === undefined ? '' : v.toFixed(d));
  const lines = rows.map(
    (r) =>
      `| ${r.suite} | ${r.name} | ${r.shape} | ${r.dtype} | ${fmt(r.ms, 2)} | ${fmt(r.gflops)} | ${fmt(r.gbps)} | ` +
      `${r.peakBytes === undefined ? '' : (r.peakBytes / 2 ** 20).toFixed(0)} | ${r.note ?? ''} |`,
  );
  return [head, sep, ...lines].join('\n');
}

export async function appendResults(rt: Runtime, rows: readonly BenchRow[], dir = join(import.meta.dirname, 'results')): Promise<string> {
  await mkdir(dir, { recursive: true });
  const adapter = `${rt.adapterInfo.vendor}/${rt.adapterInfo.architecture}/${rt.adapterInfo.device || rt.adapterInfo.description}`;
  const file = join(dir, `${new Date().toISOString().slice(0, 10)}.jsonl`);
  const at = new Date().toISOString();
  await appendFile(file, rows.map((r) => JSON.stringify({ at, adapter, ...r })).join('\n') + '\n');
  return file;
}

/** Median wall time of `iters` runs of `fn` (each ending in a GPU sync), after one warm-up run. */
export async function timeIt(rt: Runtime, fn: () => void | Promise<void>, iters = 3): Promise<number> {
  await fn();
  await rt.sync();
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await fn();
    await rt.sync();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}
