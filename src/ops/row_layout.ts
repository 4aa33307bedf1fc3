/**
 * How the row kernels (layer_norm.wgsl, softmax.wgsl) tile a [rows, cols] tensor: TPR invocations
 * reduce one row, RPW rows share a 256-invocation workgroup. Short rows (CLIP's 32–1280 features,
 * 77-token softmax rows) pack several rows per workgroup instead of idling most invocations.
 */
import type { Runtime } from '../runtime/device.js';
import { deviceTraits } from './device_traits.js';

export const ROW_GROUP_SIZE = 256;
export const THREADS_PER_ROW = [1, 32, 64, 128, 256] as const;
export type ThreadsPerRow = (typeof THREADS_PER_ROW)[number];

export interface RowLayout {
  consts: { TPR: number; RPW: number };
  workgroups: [number, number];
}

/**
 * On GPUs about four columns per invocation, between 32 and 256 invocations per row; `force`
 * overrides (tests). CPU-emulated GPUs give each invocation a row of its own: there every
 * workgroup barrier switches all invocations in turn. On lavapipe (f32) one per row against 32 and
 * the old rule's 128: LayerNorm 16384 × 320 11.8 / 70 / 782 ms, 1152 × 1536 4.5 / 12 / 86 ms;
 * softmax over 27648 × 653 scores 63 / 181 ms.
 */
export function rowLayout(rt: Runtime, rows: number, cols: number, force?: ThreadsPerRow): RowLayout {
  const gpuChoice = () => THREADS_PER_ROW.find((t) => t >= 32 && t * 4 >= cols) ?? 256;
  const tpr = force ?? (deviceTraits(rt).cpuEmulated ? 1 : gpuChoice());
  const rpw = ROW_GROUP_SIZE / tpr;
  return { consts: { TPR: tpr, RPW: rpw }, workgroups: rt.grid(rows, rpw) };
}
