/**
 * A pipeline's components checked against their checkpoints before any weight is loaded: each
 * config is walked over its checkpoint's tensor names and shapes with a dry-run loader, which reads
 * and uploads nothing. A config that does not match its tensors (a wrong file, an edited config)
 * then fails in seconds with the key and both shapes named, before the GPU holds anything.
 */
import { CLIPTextModel } from '../models/clip/modeling_clip.js';
import { WuerstchenDiffNeXt } from '../models/stage_b/modeling_wuerstchen_diffnext.js';
import { WuerstchenPrior } from '../models/stage_c/modeling_wuerstchen_prior.js';
import { PaellaVQModel } from '../models/vqgan/modeling_paella_vq_model.js';
import type { Runtime } from '../runtime/device.js';
import type { DType } from '../runtime/dtype.js';

const LOADERS = {
  text_encoder: CLIPTextModel,
  prior: WuerstchenPrior,
  decoder: WuerstchenDiffNeXt,
  vqgan: PaellaVQModel,
};

export type Component = keyof typeof LOADERS;

/** Dry-runs `<dir>/<component>` for each component, in order; throws the first mismatch. */
export async function checkCheckpoints(rt: Runtime, dir: string, components: readonly Component[], dtype: DType): Promise<void> {
  for (const component of components) {
    const shapesOnly = await LOADERS[component].fromPretrained(rt, `${dir}/${component}`, { dtype, dryRun: true });
    shapesOnly.dispose();
  }
}
