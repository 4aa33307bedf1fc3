/**
 * Longer fuzz runs than the test suite's: `npx tsx scripts/fuzz.ts --cases N --seed S [--target NAME]`
 * with NAME one of safetensors, tokenizer, tokenizer-slow, config, checkpoint (needs a WebGPU
 * adapter), png, or all (the default). Prints each target's counts; exits 1 on any crash or hang.
 */
import { parseArgs } from 'node:util';
import { openSafetensors } from '../src/io/safetensors.js';
import { CLIPTokenizer, CLIPTokenizerFast } from '../src/models/clip/tokenization_clip.js';
import { Runtime } from '../src/runtime/device.js';
import { configCheckpointTarget, configTarget, readConfigSeeds } from '../test/fuzz/config_cases.js';
import { ALL_CONFIGS, CHECKPOINTS, TINY_CONFIGS, TOKENIZER_DIR } from '../test/fuzz/fixtures.js';
import { formatCounts, runFuzz, type FuzzCounts, type FuzzTarget } from '../test/fuzz/harness.js';
import { pngSeeds, pngTarget } from '../test/fuzz/png_cases.js';
import { safetensorsSeeds, safetensorsTarget } from '../test/fuzz/safetensors_cases.js';
import { tokenizerTarget } from '../test/fuzz/tokenizer_cases.js';

const VOCAB_SIZE = 49408;

const TARGETS: Record<string, (run: <C>(target: FuzzTarget<C>) => Promise<FuzzCounts>) => Promise<FuzzCounts>> = {
  safetensors: async (run) => run(safetensorsTarget(await safetensorsSeeds(Object.values(CHECKPOINTS)))),
  tokenizer: async (run) => run(tokenizerTarget(await CLIPTokenizerFast.fromPretrained(TOKENIZER_DIR), VOCAB_SIZE)),
  'tokenizer-slow': async (run) => run(tokenizerTarget(await CLIPTokenizer.fromPretrained(TOKENIZER_DIR), VOCAB_SIZE)),
  config: async (run) => run(configTarget(await readConfigSeeds(ALL_CONFIGS))),
  checkpoint: async (run) => {
    const rt = await Runtime.create();
    const entries = await Promise.all(Object.entries(CHECKPOINTS).map(async ([k, path]) => [k, await openSafetensors(path)] as const));
    const readers = Object.fromEntries(entries) as Parameters<typeof configCheckpointTarget>[2];
    try {
      return await run(configCheckpointTarget(rt, await readConfigSeeds(TINY_CONFIGS), readers));
    } finally {
      await Promise.all(entries.map(([, reader]) => reader.close()));
      await rt.sync();
      rt.destroy();
    }
  },
  png: async (run) => run(pngTarget(pngSeeds())),
};

const { values } = parseArgs({
  options: { cases: { type: 'string', default: '10000' }, seed: { type: 'string', default: '1' }, target: { type: 'string', default: 'all' } },
});
const cases = Number(values.cases);
const seed = Number(values.seed);
if (!Number.isSafeInteger(cases) || cases < 1 || !Number.isSafeInteger(seed)) {
  console.error('usage: npx tsx scripts/fuzz.ts --cases N --seed S [--target NAME]');
  process.exit(2);
}
const names = values.target === 'all' ? Object.keys(TARGETS) : [values.target as string];
const unknown = names.filter((n) => !(n in TARGETS));
if (unknown.length) {
  console.error(`unknown target ${unknown.join(', ')}; one of ${Object.keys(TARGETS).join(', ')}, all`);
  process.exit(2);
}
let failed = false;
for (const name of names) {
  const start = performance.now();
  const counts = await TARGETS[name]((target) => runFuzz(target, cases, seed));
  console.log(`${formatCounts(counts)} (${((performance.now() - start) / 1000).toFixed(1)} s)`);
  failed ||= counts.crashes > 0 || counts.hangs > 0;
}
process.exit(failed ? 1 : 0);
