/**
 * Records dispatches into one open compute pass and submits every `batchSize` dispatches,
 * so a whole forward pass costs a handful of submits and no CPU-GPU round trip.
 *
 * Bind groups are cached by pipeline and bound ranges (uniform slice included). A denoising step
 * that starts a batch (the pipelines flush before each step) records the same dispatches on the
 * same buffers as the step before it, as the pool hands buffers out in the same order, so from
 * the second step on it creates no bind groups: creating them is most of the CPU cost of
 * recording on a fast GPU.
 */
import type { BufferPool } from './buffer_pool.js';
import { UniformArena } from './uniform_arena.js';

export interface Dispatch {
  pipeline: GPUComputePipeline;
  /** Storage bindings in binding order, starting at binding 1 (binding 0 is the uniform params). */
  buffers: GPUBufferBinding[];
  params?: Uint8Array;
  workgroups: readonly [number, number?, number?];
  label: string;
  /** Rough cost (e.g. FLOPs) used to estimate how long a readback must wait. */
  work: number;
}

/** A whole Stage B step at full depth records about 1,500 dispatches. */
const MAX_CACHED_BIND_GROUPS = 8192;

export class Recorder {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private inBatch = 0;
  readonly arena: UniformArena;
  dispatches = 0;
  submits = 0;
  bindGroupsCreated = 0;
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 0;
  /** Work recorded since the last `takeWork`. */
  private work = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly pool: BufferPool,
    readonly batchSize = 64,
  ) {
    this.arena = new UniformArena(device, batchSize * 256 * 4);
  }

  private ensurePass(): GPUComputePassEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder({ label: 'wuerstchen' });
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    return this.pass;
  }

  private id(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) this.ids.set(o, (id = this.nextId++));
    return id;
  }

  private bindGroup(pipeline: GPUComputePipeline, entries: GPUBindGroupEntry[], label: string): GPUBindGroup {
    const ranges = entries.map(({ resource }) => {
      const { buffer, offset, size } = resource as GPUBufferBinding;
      return `${this.id(buffer)}:${offset}:${size}`;
    });
    const key = `${this.id(pipeline)}|${ranges.join('|')}`;
    let group = this.bindGroups.get(key);
    if (!group) {
      if (this.bindGroups.size >= MAX_CACHED_BIND_GROUPS) this.bindGroups.clear();
      let layout = this.layouts.get(pipeline);
      if (!layout) this.layouts.set(pipeline, (layout = pipeline.getBindGroupLayout(0)));
      group = this.device.createBindGroup({ layout, entries, label });
      this.bindGroups.set(key, group);
      this.bindGroupsCreated++;
    }
    return group;
  }

  /** Drops cached bind groups (before buffers they may bind are destroyed). */
  forgetBindGroups(): void {
    this.bindGroups.clear();
  }

  dispatch(d: Dispatch): void {
    if (d.params && this.arena.wouldOverflow(d.params.byteLength)) this.flush();
    const entries: GPUBindGroupEntry[] = [];
    if (d.params) entries.push({ binding: 0, resource: this.arena.push(d.params) });
    d.buffers.forEach((resource, i) => entries.push({ binding: i + 1, resource }));
    const bindGroup = this.bindGroup(d.pipeline, entries, d.label);
    const pass = this.ensurePass();
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1] ?? 1, d.workgroups[2] ?? 1);
    this.dispatches++;
    this.work += d.work;
    if (++this.inBatch >= this.batchSize) this.flush();
  }

  /** Buffer-to-buffer copy, ordered after everything recorded so far. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    this.ensurePass();
    this.pass!.end();
    this.pass = null;
    this.encoder!.copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
  }

  /** Submits everything recorded; afterwards released buffers may be reused. */
  flush(): void {
    if (this.encoder) {
      this.pass?.end();
      this.arena.flush(this.device.queue);
      this.device.queue.submit([this.encoder.finish()]);
      this.submits++;
    }
    this.encoder = null;
    this.pass = null;
    this.inBatch = 0;
    this.pool.onSubmitted();
  }

  takeWork(): number {
    const w = this.work;
    this.work = 0;
    return w;
  }
}
