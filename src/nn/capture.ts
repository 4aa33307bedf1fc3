/**
 * Records intermediate activations under the golden files' names (`act.<module path>.out`) for
 * `forward --capture`. Each recorded tensor is copied on the GPU at record time, so later buffer
 * reuse cannot change it, and read back once at the end.
 */
import type { HostTensor } from '../pipeline/host_tensor.js';
import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';

/** How a device tensor maps to the PyTorch tensor the golden stores. */
export type CaptureLayout = 'same' | 'nhwc';

export class Capture {
  private readonly entries: { name: string; tensor: Tensor; layout: CaptureLayout }[] = [];
  private readonly counts = new Map<string, number>();

  constructor(private readonly rt: Runtime) {}

  /**
   * `name` is the module path; a module run again gets `@1`, `@2`, … as in the goldens.
   * `layout: 'nhwc'` converts [B, H, W, C] to PyTorch's NCHW on readback.
   */
  record(modulePath: string, t: Tensor, layout: CaptureLayout = 'same'): void {
    this.push(`act.${modulePath}.out`, t, layout);
  }

  /** An argument a module was called with, as `act.<module path>.in.<argument>` (e.g. ResBlockStageB's `x_skip`). */
  recordInput(modulePath: string, argument: string, t: Tensor, layout: CaptureLayout = 'same'): void {
    this.push(`act.${modulePath}.in.${argument}`, t, layout);
  }

  private push(base: string, t: Tensor, layout: CaptureLayout): void {
    const seen = this.counts.get(base) ?? 0;
    this.counts.set(base, seen + 1);
    const name = `${base}${seen ? `@${seen}` : ''}`;
    this.entries.push({ name, tensor: this.rt.detach(this.rt.copy(t)), layout });
  }

  async read(): Promise<Map<string, HostTensor>> {
    const values = await this.rt.readMany(this.entries.map((e) => e.tensor));
    const out = new Map<string, HostTensor>();
    this.entries.forEach(({ name, tensor, layout }, i) => {
      out.set(name, layout === 'nhwc' ? nhwcToNchw(tensor.shape, values[i]) : { shape: [...tensor.shape], data: values[i] });
      tensor.dispose();
    });
    this.entries.length = 0;
    return out;
  }
}

export function nhwcToNchw(shape: readonly number[], data: Float32Array): HostTensor {
  const [b, h, w, c] = shape;
  const out = new Float32Array(data.length);
  for (let n = 0; n < b; n++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let ch = 0; ch < c; ch++) out[((n * c + ch) * h + y) * w + x] = data[((n * h + y) * w + x) * c + ch];
  return { shape: [b, c, h, w], data: out };
}

export function nchwToNhwc(shape: readonly number[], data: Float32Array): HostTensor {
  const [b, c, h, w] = shape;
  const out = new Float32Array(data.length);
  for (let n = 0; n < b; n++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[((n * h + y) * w + x) * c + ch] = data[((n * c + ch) * h + y) * w + x];
  return { shape: [b, h, w, c], data: out };
}
