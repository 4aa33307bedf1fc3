import { fileURLToPath } from 'node:url';
import { WuerstchenDecoderPipeline } from '../../src/pipeline/pipeline_wuerstchen.js';
import { WuerstchenPriorPipeline } from '../../src/pipeline/pipeline_wuerstchen_prior.js';
import type { Runtime } from '../../src/runtime/device.js';

/** The tiny random-weight pipelines in the real Hub layout, with the golden e2e run beside them. */
export const TINY_PIPELINES_DIR = fileURLToPath(new URL('../fixtures/pipelines/', import.meta.url));

export interface TinyPipelines {
  prior: WuerstchenPriorPipeline;
  decoder: WuerstchenDecoderPipeline;
  dispose(): void;
}

/** Loads the tiny prior and decoder pipelines onto `rt`. */
export async function loadTinyPipelines(rt: Runtime): Promise<TinyPipelines> {
  const prior = await WuerstchenPriorPipeline.fromPretrained(rt, `${TINY_PIPELINES_DIR}wuerstchen-prior`);
  const decoder = await WuerstchenDecoderPipeline.fromPretrained(rt, `${TINY_PIPELINES_DIR}wuerstchen`);
  return {
    prior,
    decoder,
    dispose: () => {
      prior.dispose();
      decoder.dispose();
    },
  };
}
