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

/**
 * GPU time per dispatch through `timestamp-query` (bench/profile.ts): while a timer is set on the
 * recorder, every dispatch runs in a compute pass of its own that writes a timestamp at its start
 * and its end.
 */
export class DispatchTimer {
  readonly labels: string[] = [];
  private readonly querySet: GPUQuerySet;

  constructor(
    private readonly device: GPUDevice,
    readonly capacity: number,
  ) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * capacity });
  }

  /** The pass's timestamp writes for the next dispatch. */
  next(label: string): GPUComputePassTimestampWrites {
    const i = this.labels.length;
    if (i >= this.capacity) throw new Error(`DispatchTimer: more than ${this.capacity} dispatches`);
    this.labels.push(label);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Each timed dispatch's label and GPU milliseconds, in dispatch order (after the work is submitted). */
  async read(): Promise<{ label: string; ms: number }[]> {
    const bytes = 16 * this.labels.length;
    const resolved = this.device.createBuffer({ size: Math.max(bytes, 16), usage: 0x200 | 0x04 }); // QUERY_RESOLVE | COPY_SRC
    const readback = this.device.createBuffer({ size: Math.max(bytes, 16), usage: 0x01 | 0x08 }); // MAP_READ | COPY_DST
    const encoder = this.device.createCommandEncoder();
    encoder.resolveQuerySet(this.querySet, 0, 2 * this.labels.length, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, readback, 0, bytes);
    this.device.queue.submit([encoder.finish()]);
    await readback.mapAsync(1); // GPUMapMode.READ
    const ticks = new BigInt64Array(readback.getMappedRange(0, bytes).slice(0));
    readback.unmap();
    for (const b of [resolved, readback, this.querySet]) b.destroy();
    return this.labels.map((label, i) => ({ label, ms: Number(ticks[2 * i + 1] - ticks[2 * i]) / 1e6 }));
  }
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
  /** When set, each dispatch is timed in a pass of its own. */
  timer: DispatchTimer | null = null;

  constructor(
    private readonly device: GPUDevice,
    private readonly pool: BufferPool,
    readonly batchSize = 64,
  ) {
    this.arena = new UniformArena(device, batchSize * 256 * 4);
  }

  /** The open compute pass; with timestamp writes, a new pass of its own. */
  private ensurePass(timestampWrites?: GPUComputePassTimestampWrites): GPUComputePassEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder({ label: 'wuerstchen' });
    if (timestampWrites) {
      this.pass?.end();
      this.pass = this.encoder.beginComputePass({ timestampWrites });
    } else if (!this.pass) {
      this.pass = this.encoder.beginComputePass();
    }
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
    const pass = this.ensurePass(this.timer?.next(d.label));
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1] ?? 1, d.workgroups[2] ?? 1);
    if (this.timer) {
      pass.end();
      this.pass = null;
    }
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
