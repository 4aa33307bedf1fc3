/**
 * How the row kernels (layer_norm.wgsl, softmax.wgsl) tile a [rows, cols] tensor: TPR invocations
 * reduce one row, RPW rows share a 256-invocation workgroup. Short rows (CLIP's 32–1280 features,
 * 77-token softmax rows) pack several rows per workgroup instead of idling most invocations.
 */
import type { Runtime } from '../runtime/device.js';
import { deviceTraits } from './device_traits.js';

export const ROW_GROUP_SIZE = 256;
export const THREADS_PER_ROW = [32, 64, 128, 256] as const;
export type ThreadsPerRow = (typeof THREADS_PER_ROW)[number];

export interface RowLayout {
  consts: { TPR: number; RPW: number };
  workgroups: [number, number];
}

/**
 * About four columns per invocation, between 32 and 256 invocations per row; `force` overrides
 * (tests). CPU-emulated GPUs take 32 per row whatever the length: there every workgroup barrier
 * switches all invocations in turn, and on lavapipe 32 per row ran LayerNorms 3.4–3.5× faster
 * than 128 or 256 (16384 × 320: 222 against 782 ms; 1152 × 1536: 32 against 110 ms).
 */
export function rowLayout(rt: Runtime, rows: number, cols: number, force?: ThreadsPerRow): RowLayout {
  const fewest = deviceTraits(rt).cpuEmulated ? THREADS_PER_ROW[0] : undefined;
  const tpr = force ?? fewest ?? THREADS_PER_ROW.find((t) => t * 4 >= cols) ?? 256;
  const rpw = ROW_GROUP_SIZE / tpr;
  return { consts: { TPR: tpr, RPW: rpw }, workgroups: rt.grid(rows, rpw) };
}
