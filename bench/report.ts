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
  /** Steady-state time of one run (absent for derived rows such as estimates). */
  ms?: number;
  gflops?: number;
  gbps?: number;
  peakBytes?: number;
  /** Model suites: weight loading (synthesis and upload) and the first, pipeline-compiling forward. */
  loadMs?: number;
  firstMs?: number;
  /** Of `ms`, the CPU time spent recording the work (model suites). */
  recordMs?: number;
  note?: string;
}

interface Column {
  head: string;
  right: boolean;
  cell(r: BenchRow): string | undefined;
}

const fixed = (v: number | undefined, digits: number) => (v === undefined ? undefined : v.toFixed(digits));

const COLUMNS: Column[] = [
  { head: 'suite', right: false, cell: (r) => r.suite },
  { head: 'name', right: false, cell: (r) => r.name },
  { head: 'shape', right: false, cell: (r) => r.shape },
  { head: 'dtype', right: false, cell: (r) => r.dtype },
  { head: 'load ms', right: true, cell: (r) => fixed(r.loadMs, 0) },
  { head: 'first ms', right: true, cell: (r) => fixed(r.firstMs, 0) },
  { head: 'ms', right: true, cell: (r) => fixed(r.ms, 2) },
  { head: 'record ms', right: true, cell: (r) => fixed(r.recordMs, 0) },
  { head: 'GFLOP/s', right: true, cell: (r) => fixed(r.gflops, 1) },
  { head: 'GB/s', right: true, cell: (r) => fixed(r.gbps, 1) },
  { head: 'peak MB', right: true, cell: (r) => fixed(r.peakBytes === undefined ? undefined : r.peakBytes / 2 ** 20, 0) },
  { head: 'note', right: false, cell: (r) => r.note },
];

/** A Markdown table of the rows, leaving out columns no row fills. */
export function markdownTable(rows: readonly BenchRow[]): string {
  const columns = COLUMNS.filter((c) => rows.some((r) => c.cell(r) !== undefined));
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    line(columns.map((c) => c.head)),
    line(columns.map((c) => (c.right ? '---:' : '---'))),
    ...rows.map((r) => line(columns.map((c) => c.cell(r) ?? ''))),
  ].join('\n');
}

/** Appends the rows as JSON lines to bench/results/<date>.jsonl, each with the adapter and `context` (e.g. the run's flags). */
export async function appendResults(
  rt: Runtime,
  rows: readonly BenchRow[],
  context: Record<string, unknown> = {},
  dir = join(import.meta.dirname, 'results'),
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const adapter = `${rt.adapterInfo.vendor}/${rt.adapterInfo.architecture}/${rt.adapterInfo.device || rt.adapterInfo.description}`;
  const file = join(dir, `${new Date().toISOString().slice(0, 10)}.jsonl`);
  const at = new Date().toISOString();
  await appendFile(file, rows.map((r) => JSON.stringify({ at, adapter, ...context, ...r })).join('\n') + '\n');
  return file;
}
