/**
 * `--dump`: the tensors of a generation under the names of ../shared/golden/pipelines/e2e.safetensors
 * (`prior.text_encoder.call0.input_ids`, `prior.initial_noise`, `prior.step03.latents`, `image`, …).
 * Recording a device tensor reads it back, so a dump costs one sync per recorded tensor; without a
 * dump the denoising loops never read back.
 */
import { writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import type { NamedTensor } from '../nn/forward_component.js';
import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';

export class PipelineDump {
  readonly tensors = new Map<string, NamedTensor>();

  constructor(private readonly rt: Runtime) {}

  host(name: string, t: NamedTensor): void {
    this.tensors.set(name, { shape: [...t.shape], data: Float32Array.from(t.data), dtype: t.dtype });
  }

  ids(name: string, rows: readonly number[][]): void {
    this.tensors.set(name, { shape: [rows.length, rows[0]?.length ?? 0], data: Float32Array.from(rows.flat()), dtype: 'I64' });
  }

  async device(name: string, t: Tensor): Promise<void> {
    this.tensors.set(name, { shape: [...t.shape], data: await this.rt.read(t) });
  }

  async write(path: string, metadata: Record<string, string> = {}): Promise<void> {
    const out: Record<string, TensorToWrite> = {};
    for (const [name, t] of this.tensors) {
      out[name] =
        t.dtype === 'I64'
          ? { dtype: 'I64', shape: t.shape, data: BigInt64Array.from(t.data, (v) => BigInt(v)) }
          : { dtype: 'F32', shape: t.shape, data: Float32Array.from(t.data) };
    }
    await writeSafetensors(path, out, metadata);
  }
}

/** `stepNN`, as the golden names steps. */
export const stepName = (i: number) => `step${String(i).padStart(2, '0')}`;
