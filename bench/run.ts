/**
 * `npm run bench [-- <suite> ...]`: runs the benchmark suites (all by default), prints a Markdown
 * table and appends JSON lines with the adapter description under bench/results/.
 */
import { Runtime } from '../src/runtime/device.js';
import { appendResults, markdownTable, type BenchRow } from './report.js';

type Suite = (rt: Runtime, args: string[]) => Promise<BenchRow[]>;

// Each suite lives in its own module and is loaded only when run.
const suites: Record<string, () => Promise<Suite>> = {
  ops: async () => (await import('./ops_matmul.js')).benchMatmul,
};

const requested = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const names = requested.length ? requested : Object.keys(suites);
const unknown = names.filter((n) => !suites[n]);
if (unknown.length) {
  console.error(`unknown bench suite(s): ${unknown.join(', ')} (available: ${Object.keys(suites).join(', ')})`);
  process.exit(2);
}

const rt = await Runtime.create();
console.log(`adapter: ${rt.adapterInfo.vendor} / ${rt.adapterInfo.architecture} / ${rt.adapterInfo.device || rt.adapterInfo.description}`);
const rows: BenchRow[] = [];
for (const name of names) {
  const suite = await suites[name]();
  const got = await suite(rt, flags);
  rows.push(...got);
  console.log(`\n## ${name}\n\n${markdownTable(got)}`);
}
const file = await appendResults(rt, rows);
console.log(`\nresults appended to ${file}`);
rt.destroy();
