import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { SafetensorsFile, type TensorReader } from '../src/io/safetensors.js';
import { manifestTensors, SyntheticCheckpoint, type TensorSpec } from '../src/io/synthetic_checkpoint.js';
import { parseCLIPTextConfig, type CLIPTextConfig } from '../src/models/clip/configuration_clip.js';
import { CLIPTextModel, poolerIndices } from '../src/models/clip/modeling_clip.js';
import { textEncoderComponent } from '../src/models/clip/text_encoder_component.js';
import { Capture } from '../src/nn/capture.js';
import type { NamedTensor } from '../src/nn/forward_component.js';
import { WeightLoader } from '../src/nn/weight_scope.js';
import { openFileSource } from '../src/platform/file.js';
import type { Runtime } from '../src/runtime/device.js';
import type { DType } from '../src/runtime/dtype.js';
import { expectClose, type Tolerance } from './helpers/compare.js';
import {
  expectAllMatchGolden,
  expectNmseCosine,
  readGoldenIo,
  readHostTensors,
  runForward,
  type GoldenIo,
  type NmseCosineBounds,
} from './helpers/golden_io.js';
import { roundToF16 } from './helpers/golden_ops.js';
import { getRuntime } from './helpers/gpu.js';

// Goldens: ../shared/golden/io/text_encoder_{prior,decoder}.safetensors (transformers 4.57 CLIPTextModel,
// eager attention, output_hidden_states and output_attentions, batch 2, with the act.* module outputs),
// the tiny models of ../shared/golden/models/, the full-size manifests of ../shared/golden/manifests/
// and the released text_encoder configs of warp-ai/wuerstchen-prior (ViT-bigG) and warp-ai/wuerstchen (ViT-H).
const fixture = (path: string) => fileURLToPath(new URL(`./fixtures/${path}`, import.meta.url));

// README §2: io/* atol 1e-5 rtol 1e-4; io/*::*attentions* atol 1e-6 rtol 1e-4.
const IO: Tolerance = { atol: 1e-5, rtol: 1e-4 };
const ATTENTIONS: Tolerance = { atol: 1e-6, rtol: 1e-4 };
// STYLE.md, full model forward with f16 storage and f32 arithmetic (measured on the tiny towers:
// NMSE ≤ 1.1e-6 for every output and module output, f32 max error ≤ 0.5 % of the io bound).
const F16: NmseCosineBounds = { maxNmse: 1e-3, minCosine: 0.999 };

const ENCODERS = ['text_encoder_prior', 'text_encoder_decoder'] as const;

const readGolden = (name: string) => readGoldenIo(fixture(`io/${name}.safetensors`));

const toleranceOf = (name: string) => (name.startsWith('out.attentions.') ? ATTENTIONS : IO);

function rows(t: NamedTensor): number[][] {
  const [batch, length] = t.shape;
  return Array.from({ length: batch }, (_, b) => Array.from(t.data.subarray(b * length, (b + 1) * length)));
}

/** Runs the `text_encoder` component (the CLI's code path) with or without a capture. */
function runComponent(rt: Runtime, name: string, golden: GoldenIo, dtype: DType, capture: boolean) {
  return runForward(textEncoderComponent, { rt, modelDir: fixture(`models/${name}`), dtype, inputs: golden.inputs }, capture);
}

let rt: Runtime;
beforeAll(async () => {
  rt = await getRuntime();
});

describe.each(ENCODERS)('CLIPTextModel %s against the golden io file', (name) => {
  let golden: GoldenIo;
  beforeAll(async () => {
    golden = await readGolden(name);
  });

  it('lists 13 captured module outputs and 7 outputs in the golden (all of them are checked below)', () => {
    expect([...golden.expected.keys()].filter((k) => k.startsWith('act.'))).toHaveLength(13);
    expect([...golden.expected.keys()].filter((k) => k.startsWith('out.'))).toHaveLength(7);
  });

  it('f32 with capture: every output and every captured module output within the io tolerances', async () => {
    const outputs = await runComponent(rt, name, golden, 'f32', true);
    expectAllMatchGolden(outputs, golden.expected, (got, want, key) => expectClose(got, want, toleranceOf(key), `${name} f32 ${key}`));
  });

  it('f32 without capture (activation and residuals fused into the GEMMs): every output', async () => {
    const outputs = await runComponent(rt, name, golden, 'f32', false);
    expect([...outputs.keys()].sort()).toEqual([...golden.expected.keys()].filter((k) => k.startsWith('out.')).sort());
    for (const [key, got] of outputs) expectClose(got.data, golden.expected.get(key)!.data, toleranceOf(key), `${name} fused ${key}`);
  });

  it(`f16 with capture: every output and captured module output at NMSE ≤ ${F16.maxNmse}, cosine ≥ ${F16.minCosine}`, async () => {
    const outputs = await runComponent(rt, name, golden, 'f16', true);
    expectAllMatchGolden(outputs, golden.expected, (got, want, key) => expectNmseCosine(got, want, F16, `${name} f16 ${key}`));
  });

  it.each(['f32', 'f16'] as const)('batch 1 (%s): each prompt alone gives its row of the batch-2 golden', async (dtype) => {
    const model = await CLIPTextModel.fromPretrained(rt, fixture(`models/${name}`), { dtype });
    try {
      const ids = rows(golden.inputs.get('in.input_ids')!);
      const mask = rows(golden.inputs.get('in.attention_mask')!);
      const last = golden.expected.get('out.last_hidden_state')!;
      const pooled = golden.expected.get('out.pooler_output')!;
      const [, length, hidden] = last.shape;
      for (let b = 0; b < ids.length; b++) {
        const out = await model.forward([ids[b]], [mask[b]]);
        expect(out.lastHiddenState.shape).toEqual([1, length, hidden]);
        expect(out.hiddenStates).toBeUndefined();
        expect(out.attentions).toBeUndefined();
        const [gotLast, gotPooled] = await rt.readMany([out.lastHiddenState, out.poolerOutput]);
        out.lastHiddenState.dispose();
        out.poolerOutput.dispose();
        const wantLast = last.data.subarray(b * length * hidden, (b + 1) * length * hidden);
        const wantPooled = pooled.data.subarray(b * hidden, (b + 1) * hidden);
        if (dtype === 'f32') {
          expectClose(gotLast, wantLast, IO, `prompt ${b} last_hidden_state`);
          expectClose(gotPooled, wantPooled, IO, `prompt ${b} pooler_output`);
        } else {
          expectNmseCosine(gotLast, wantLast, F16, `prompt ${b} last_hidden_state`);
          expectNmseCosine(gotPooled, wantPooled, F16, `prompt ${b} pooler_output`);
        }
      }
    } finally {
      model.dispose();
    }
  });
});

describe("hidden_act 'quick_gelu' (no golden: the released towers use exact GELU)", () => {
  it('activation_fn applies x·sigmoid(1.702x) to fc1, and the fused path matches the captured one', async () => {
    const dir = fixture('models/text_encoder_prior');
    const config = { ...parseCLIPTextConfig(await readFile(`${dir}/config.json`, 'utf8'), 'config.json'), hiddenAct: 'quick_gelu' as const };
    const reader = await SafetensorsFile.open(await openFileSource(`${dir}/model.safetensors`));
    const model = await CLIPTextModel.load(new WeightLoader(rt, reader, 'model.safetensors', 'f32'), config);
    await reader.close();
    try {
      const golden = await readGolden('text_encoder_prior');
      const ids = rows(golden.inputs.get('in.input_ids')!);
      const mask = rows(golden.inputs.get('in.attention_mask')!);
      const capture = new Capture(rt);
      const captured = await model.forward(ids, mask, { capture });
      const fused = await model.forward(ids, mask);
      const [a, b] = await rt.readMany([captured.lastHiddenState, fused.lastHiddenState]);
      for (const t of [captured.lastHiddenState, captured.poolerOutput, fused.lastHiddenState, fused.poolerOutput]) t.dispose();
      const acts = await capture.read();
      const fc1 = acts.get('act.text_model.encoder.layers.0.mlp.fc1.out')!.data;
      const quickGelu = fc1.map((x) => x / (1 + Math.exp(-1.702 * x)));
      expectClose(acts.get('act.text_model.encoder.layers.0.mlp.activation_fn.out')!.data, quickGelu, IO, 'quick_gelu');
      expectClose(b, a, IO, 'fused vs captured last_hidden_state');
    } finally {
      model.dispose();
    }
  });
});

describe('wuerstchen forward text_encoder (CLI)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clip-forward-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes every golden tensor of io/text_encoder_decoder, captured module outputs included', async () => {
    const out = join(dir, 'out.safetensors');
    const inputs = fixture('io/text_encoder_decoder.safetensors');
    const code = await main(['forward', 'text_encoder', '--model', fixture('models/text_encoder_decoder'), '--inputs', inputs, '--out', out, '--capture']);
    expect(code).toBe(0);
    const golden = await readGolden('text_encoder_decoder');
    const written = await readHostTensors(out);
    expectAllMatchGolden(written, golden.expected, (got, want, key) => expectClose(got, want, toleranceOf(key), `CLI ${key}`));
  });
});

describe('pooler_output row (transformers 4.57)', () => {
  it('eos_token_id 2 (the released configs): the first position of the largest id', () => {
    expect(poolerIndices([[49406, 320, 49407, 49407], [49406, 49407, 5, 49407]], 2)).toEqual([2, 1]);
  });
  it('any other eos_token_id: its first position, 0 when absent', () => {
    expect(poolerIndices([[49406, 320, 49407, 49407], [49406, 320, 321, 322]], 49407)).toEqual([2, 0]);
  });
});

// ---- loading ----------------------------------------------------------------------------------

const readJson = async (path: string) => JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;

/** Loads `specs` as a checkpoint in dry-run mode: keys and shapes only, no data read or uploaded. */
async function dryRunLoad(reader: TensorReader, config: CLIPTextConfig, dtype: DType = 'f32'): Promise<WeightLoader> {
  const loader = new WeightLoader(rt, reader, 'model.safetensors', dtype, { dryRun: true });
  const model = await CLIPTextModel.load(loader, config);
  model.dispose();
  return loader;
}

describe('full-size checkpoints (manifests) load with every key used', () => {
  const cases = [
    { manifest: 'text_encoder_prior_bigG.json', config: 'wuerstchen-prior_text_encoder.json', hidden: 1280, layers: 32, heads: 20, mlp: 5120, tensors: 516 },
    { manifest: 'text_encoder_decoder_vitH.json', config: 'wuerstchen_text_encoder.json', hidden: 1024, layers: 24, heads: 16, mlp: 4096, tensors: 388 },
  ];
  for (const c of cases) {
    it(`${c.manifest}: the released config parses and all ${c.tensors} tensors load (f32 and f16)`, async () => {
      const manifest = await readJson(fixture(`manifests/${c.manifest}`));
      const configPath = fixture(`configs/${c.config}`);
      const config = parseCLIPTextConfig(await readFile(configPath, 'utf8'), configPath);
      expect(config).toEqual({
        vocabSize: 49408,
        hiddenSize: c.hidden,
        intermediateSize: c.mlp,
        numHiddenLayers: c.layers,
        numAttentionHeads: c.heads,
        maxPositionEmbeddings: 77,
        hiddenAct: 'gelu',
        layerNormEps: 1e-5,
        eosTokenId: 2,
      });
      expect(parseCLIPTextConfig(JSON.stringify(manifest.config), 'manifest config')).toEqual(config);
      expect(manifest.non_persistent_buffers_not_in_checkpoint).toEqual(['text_model.embeddings.position_ids']);
      const specs = manifestTensors(manifest);
      expect(specs).toHaveLength(c.tensors);
      for (const dtype of ['f32', 'f16'] as const) {
        const loader = await dryRunLoad(new SyntheticCheckpoint(specs, { dtype: 'F32', name: c.manifest }), config, dtype);
        expect(loader.used.size).toBe(c.tensors);
      }
    });
  }
});

describe('ViT-bigG embeddings at full size (no encoder layers, synthetic weights)', () => {
  it.each(['f32', 'f16'] as const)(
    '%s: the 49408 × 1280 token table (253 MB in f32, over the default 128 MiB binding) is looked up on the host, exactly',
    async (dtype) => {
      const manifest = await readJson(fixture('manifests/text_encoder_prior_bigG.json'));
      const specs = manifestTensors(manifest).filter((s) => !s.name.startsWith('text_model.encoder.'));
      const config = { ...parseCLIPTextConfig(JSON.stringify(manifest.config), 'manifest config'), numHiddenLayers: 0 };
      const reader = new SyntheticCheckpoint(specs, { dtype: 'F32', name: 'bigG' });
      const model = await CLIPTextModel.load(new WeightLoader(rt, reader, 'bigG', dtype), config);
      try {
        const ids = [[49406, 320, 1125, 49407, 49407], [49406, 0, 49405, 256, 49407]];
        const out = await model.forward(ids, [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], { outputHiddenStates: true });
        const [embeddings] = await rt.readMany([out.hiddenStates![0]]);
        for (const t of [out.lastHiddenState, out.poolerOutput, ...out.hiddenStates!]) t.dispose();

        const tokens = await reader.readF32('text_model.embeddings.token_embedding.weight');
        const positions = await reader.readF32('text_model.embeddings.position_embedding.weight');
        const inDtype = dtype === 'f16' ? roundToF16 : (v: Float32Array) => v;
        const want = new Float32Array(ids.flat().length * 1280);
        ids.flat().forEach((id, n) => {
          const row = inDtype(tokens.subarray(id * 1280, (id + 1) * 1280));
          const pos = inDtype(positions.subarray((n % 5) * 1280, (n % 5 + 1) * 1280));
          // One f32 add, then (f16) one rounding of the sum: torch's add in that dtype.
          want.set(inDtype(row.map((v, c) => v + pos[c])), n * 1280);
        });
        expect(embeddings).toEqual(want);
      } finally {
        model.dispose();
      }
    },
  );
});

describe('checkpoint errors', () => {
  let specs: TensorSpec[];
  let config: CLIPTextConfig;
  beforeAll(async () => {
    const dir = fixture('models/text_encoder_prior');
    config = parseCLIPTextConfig(await readFile(`${dir}/config.json`, 'utf8'), 'config.json');
    const file = await SafetensorsFile.open(await openFileSource(`${dir}/model.safetensors`));
    specs = [...file.tensors.values()].map(({ name, shape }) => ({ name, shape }));
    await file.close();
  });
  const checkpoint = (list: TensorSpec[]) => new SyntheticCheckpoint(list, { dtype: 'F32', name: 'model.safetensors' });

  it('the tiny checkpoint has no position_ids (a non-persistent buffer) and loads with all 36 keys', async () => {
    expect(specs.map((s) => s.name)).not.toContain('text_model.embeddings.position_ids');
    expect((await dryRunLoad(checkpoint(specs), config)).used.size).toBe(36);
  });

  it('a missing key names the key and its expected shape', async () => {
    const without = specs.filter((s) => s.name !== 'text_model.encoder.layers.1.mlp.fc2.bias');
    await expect(dryRunLoad(checkpoint(without), config)).rejects.toThrow(
      "model.safetensors: missing tensor 'text_model.encoder.layers.1.mlp.fc2.bias' (expected shape [32])",
    );
  });

  it('a mis-shaped key names the key and both shapes', async () => {
    const reshaped = specs.map((s) => (s.name === 'text_model.encoder.layers.0.mlp.fc1.weight' ? { ...s, shape: [32, 37] } : s));
    await expect(dryRunLoad(checkpoint(reshaped), config)).rejects.toThrow(
      "model.safetensors: tensor 'text_model.encoder.layers.0.mlp.fc1.weight' has shape [32, 37], expected [37, 32]",
    );
  });

  it('an unknown key is reported as unused', async () => {
    const extra = [...specs, { name: 'text_model.text_projection.weight', shape: [32, 32] }];
    await expect(dryRunLoad(checkpoint(extra), config)).rejects.toThrow(
      "model.safetensors: 1 tensor(s) not used by the model: 'text_model.text_projection.weight'",
    );
  });

  it('position_ids, as checkpoints saved before transformers 4.31 hold it, is accepted and ignored', async () => {
    const withIds = [...specs, { name: 'text_model.embeddings.position_ids', shape: [1, 77] }];
    expect((await dryRunLoad(checkpoint(withIds), config)).used.size).toBe(37);
  });
});

describe('config and input errors', () => {
  it('an unsupported hidden_act', () => {
    expect(() => parseCLIPTextConfig('{"hidden_act": "relu"}', 'config.json')).toThrow(
      `config.json: 'hidden_act' "relu" is not supported (one of: gelu, quick_gelu)`,
    );
  });

  it('a token id outside the vocabulary and a sequence longer than 77 positions', async () => {
    const model = await CLIPTextModel.fromPretrained(rt, fixture('models/text_encoder_prior'));
    try {
      await expect(model.forward([[49406, 49408]], [[1, 1]])).rejects.toThrow(
        'CLIPTextModel: input_ids[0][1] = 49408 is not a token id (vocab_size 49408)',
      );
      await expect(model.forward([new Array(78).fill(0)], [new Array(78).fill(1)])).rejects.toThrow(
        'CLIPTextModel: sequence length 78 is more than max_position_embeddings 77',
      );
    } finally {
      model.dispose();
    }
  });
});
