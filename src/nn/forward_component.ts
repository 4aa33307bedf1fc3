/**
 * A model entry point for the research harness (`wuerstchen forward <component>`): reads and writes
 * tensors under the names of the matching golden file in ../shared/golden/io/.
 */
import type { HostTensor } from '../pipeline/host_tensor.js';
import type { Runtime } from '../runtime/device.js';
import type { DType } from '../runtime/dtype.js';
import type { Capture } from './capture.js';

/** A host tensor as read from or written to a safetensors file; integer tensors are I64 on disk. */
export interface NamedTensor extends HostTensor {
  dtype?: 'F32' | 'I64';
}

export interface ForwardContext {
  rt: Runtime;
  modelDir: string;
  dtype: DType;
  inputs: ReadonlyMap<string, NamedTensor>;
  capture?: Capture;
}

export interface ForwardComponent {
  /** The golden io file whose names it uses, e.g. 'vqgan' for io/vqgan.safetensors. */
  golden: string;
  /** Input tensor names it needs. */
  inputs: readonly string[];
  run(ctx: ForwardContext): Promise<Map<string, NamedTensor>>;
}

export function requireInput(ctx: ForwardContext, name: string): NamedTensor {
  const t = ctx.inputs.get(name);
  if (!t) throw new Error(`input tensor '${name}' is missing (inputs have: ${[...ctx.inputs.keys()].join(', ') || 'nothing'})`);
  return t;
}
