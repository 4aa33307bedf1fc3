import { describe, expect, it } from 'vitest';
import { SyntheticCheckpoint } from '../src/io/synthetic_checkpoint.js';
import { CLIPTextModel } from '../src/models/clip/modeling_clip.js';
import { WuerstchenDiffNeXt } from '../src/models/stage_b/modeling_wuerstchen_diffnext.js';
import { WuerstchenPrior } from '../src/models/stage_c/modeling_wuerstchen_prior.js';
import { PaellaVQModel } from '../src/models/vqgan/modeling_paella_vq_model.js';
import { WeightLoader } from '../src/nn/weight_scope.js';
import type { TensorSpec } from '../src/io/synthetic_checkpoint.js';
import { reducedClip, reducedDiffNeXt, reducedPrior, reducedVqgan } from '../bench/synthetic_models.js';
import { getRuntime } from './helpers/gpu.js';

const reader = (tensors: readonly TensorSpec[]) => new SyntheticCheckpoint(tensors, { dtype: 'F16', name: 'reduced' });

// A dry-run load checks every key and shape the smaller config asks for, and that none is left over.
describe('bench models cut down to fewer blocks', () => {
  it('CLIP-bigG with 4 of 32 layers loads under its reduced config', async () => {
    const rt = await getRuntime();
    const { config, kept, dropped } = await reducedClip('text_encoder_prior_bigG.json', 4);
    expect(config.numHiddenLayers).toBe(4);
    expect(dropped.length).toBe(28 * 16);
    const model = await CLIPTextModel.load(new WeightLoader(rt, reader(kept), 'bigG', 'f16', { dryRun: true }), config);
    model.dispose();
  });

  it('stage C with depth 2 of 32 loads under its reduced config', async () => {
    const rt = await getRuntime();
    const { config, kept } = await reducedPrior(2);
    const prior = await WuerstchenPrior.fromReader(rt, reader(kept), 'prior', config, { dryRun: true });
    expect(prior.blocks.length).toBe(6);
    prior.dispose();
  });

  it('stage B with blocks [1, 1, 1, 1] loads under its reduced config, and not under the full one', async () => {
    const rt = await getRuntime();
    const { full, config, kept } = await reducedDiffNeXt([1, 1, 1, 1]);
    expect(config.blocks).toEqual([1, 1, 1, 1]);
    const model = await WuerstchenDiffNeXt.fromReader(rt, reader(kept), 'decoder', config, { dryRun: true });
    model.dispose();
    await expect(WuerstchenDiffNeXt.fromReader(rt, reader(kept), 'decoder', full, { dryRun: true })).rejects.toThrow(
      "decoder: missing tensor 'down_blocks.0.2.depthwise.weight' (expected shape [320, 1, 3, 3])",
    );
  });

  it('the VQGAN with 2 of 12 bottleneck blocks loads under its reduced config', async () => {
    const rt = await getRuntime();
    const { config, kept } = await reducedVqgan(2);
    const model = await PaellaVQModel.load(new WeightLoader(rt, reader(kept), 'vqgan', 'f16', { dryRun: true }), config);
    expect(model.upBlocks.length).toBe(1 + 2 + 1 + 1);
    model.dispose();
  });
});
