import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSafetensors } from '../src/io/safetensors.js';
import { CLIPConfigError, parseCLIPTextConfig } from '../src/models/clip/configuration_clip.js';
import { ConfigError, parseWuerstchenDiffNeXtConfig } from '../src/models/stage_b/modeling_wuerstchen_diffnext.js';
import { parseModelIndex, parseSchedulerConfig, PipelineConfigError, tokenizerClass } from '../src/pipeline/model_index.js';
import type { Runtime } from '../src/runtime/device.js';
import { configCheckpointTarget, configTarget, readConfigSeeds, type CheckpointReaders } from './fuzz/config_cases.js';
import { ALL_CONFIGS, CHECKPOINTS, TINY_CONFIGS } from './fuzz/fixtures.js';
import { formatCounts, runFuzz } from './fuzz/harness.js';
import { getRuntime } from './helpers/gpu.js';

// Seeded fuzzing of every config parser, and of mutated configs walked over the tiny checkpoints
// with a dry-run load (scripts/fuzz.ts runs longer campaigns). A case ends in a result or the
// parser's own error class (or WeightError for a config that no longer matches its tensors).
const SEED = 20261127;

describe('fuzz: config.json, scheduler_config.json and model_index.json', () => {
  it('20,000 mutated documents over all seven parsers: each a config or its typed error', async () => {
    const counts = await runFuzz(configTarget(await readConfigSeeds(ALL_CONFIGS)), 20_000, SEED);
    console.log(formatCounts(counts));
    expect(counts.failures).toEqual([]);
    expect({ cases: counts.cases, crashes: counts.crashes, hangs: counts.hangs }).toEqual({ cases: 20_000, crashes: 0, hangs: 0 });
    expect(counts.errors).toBeGreaterThan(4000);
    expect(counts.results).toBeGreaterThan(4000);
  }, 120_000);

  it('names the field for wrong-typed, absurd and deeply nested values, with messages of bounded length', () => {
    const fail = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return err as Error;
      }
      throw new Error('no error');
    };
    expect(() => parseCLIPTextConfig('{"hidden_size": -4}', 'c.json')).toThrow(new CLIPConfigError("c.json: 'hidden_size' must be an integer ≥ 1, got -4"));
    expect(() => parseCLIPTextConfig('{"layer_norm_eps": 1e400}', 'c.json')).toThrow(
      new CLIPConfigError("c.json: 'layer_norm_eps' must be a positive finite number, got Infinity"),
    );
    const deep = `${'['.repeat(50_000)}${']'.repeat(50_000)}`;
    expect(fail(() => parseWuerstchenDiffNeXtConfig(`{"c_hidden": ${deep}}`, 'd.json'))).toEqual(
      new ConfigError('d.json: "c_hidden" must be a non-empty list of positive integers, got a deeply nested array'),
    );
    const long = fail(() => parseSchedulerConfig(`{"s": "${'x'.repeat(100_000)}"}`, 's.json'));
    expect(long).toBeInstanceOf(PipelineConfigError);
    expect(long.message).toBe(`s.json: scheduler config: "s" must be a number, got "${'x'.repeat(96)}...`);
    expect(() => parseSchedulerConfig('{"s": 1e400}', 's.json')).toThrow(
      new PipelineConfigError('s.json: scheduler config: "s" must be a finite number ≥ 0, got Infinity'),
    );
    expect(() => parseSchedulerConfig('{"scaler": 0}', 's.json')).toThrow(
      new PipelineConfigError('s.json: scheduler config: "scaler" must be a positive finite number, got 0'),
    );
    const index = parseModelIndex('{"_class_name": "WuerstchenPriorPipeline", "tokenizer": ["transformers", "constructor"]}', 'm.json', 'WuerstchenPriorPipeline');
    expect(() => tokenizerClass(index, 'dir')).toThrow(
      new PipelineConfigError('dir/model_index.json: tokenizer class "constructor" is not one of CLIPTokenizer, CLIPTokenizerFast'),
    );
    expect(() => parseModelIndex('[1]', 'm.json', 'WuerstchenPriorPipeline')).toThrow(new PipelineConfigError('m.json: expected a JSON object'));
  });
});

describe('fuzz: mutated configs against their checkpoints (dry-run loads)', () => {
  let rt: Runtime;
  let readers: CheckpointReaders;

  beforeAll(async () => {
    rt = await getRuntime();
    const entries = await Promise.all(Object.entries(CHECKPOINTS).map(async ([k, path]) => [k, await openSafetensors(path)] as const));
    readers = Object.fromEntries(entries) as CheckpointReaders;
  });

  afterAll(async () => {
    await Promise.all(Object.values(readers ?? {}).map((r) => r.close()));
  });

  it('3,000 mutated tiny configs: each loads (shapes still match) or fails with a typed error; the pool is untouched', async () => {
    const created = rt.pool.stats().created;
    const counts = await runFuzz(configCheckpointTarget(rt, await readConfigSeeds(TINY_CONFIGS), readers), 3000, SEED);
    console.log(formatCounts(counts));
    expect(counts.failures).toEqual([]);
    expect({ cases: counts.cases, crashes: counts.crashes, hangs: counts.hangs }).toEqual({ cases: 3000, crashes: 0, hangs: 0 });
    expect(counts.errors).toBeGreaterThan(600);
    expect(rt.pool.stats().created).toBe(created);
  }, 120_000);
});
