import { describe, expect, it } from 'vitest';
import { add, mul } from '../src/ops/elementwise.js';
import { bucketSize } from '../src/runtime/buffer_pool.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/runtime/dtype.js';
import { Runtime } from '../src/runtime/device.js';
import { KernelRegistry } from '../src/runtime/kernels.js';
import { DispatchTimer } from '../src/runtime/recorder.js';
import { Params } from '../src/runtime/uniform_arena.js';
import { getRuntime } from './helpers/gpu.js';

describe('runtime on the WebGPU adapter', () => {
  it('finds an adapter (a missing one fails CI, never skips)', async () => {
    const rt = await getRuntime();
    expect(rt.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
  });

  it('reads back f32 exactly', async () => {
    const rt = await getRuntime();
    const data = Float32Array.from({ length: 1001 }, (_, i) => Math.fround(Math.sin(i) * 1e3));
    const t = rt.upload(data, [7, 11, 13]);
    expect(Array.from(await rt.read(t))).toEqual(Array.from(data));
    t.dispose();
  });

  it('reads back f16 exactly (odd element count) and rounds uploads to nearest even', async () => {
    const rt = await getRuntime();
    expect(rt.hasF16).toBe(true);
    const data = Float32Array.from({ length: 333 }, (_, i) => (i - 166) * 0.0137);
    const t = rt.upload(data, [333], 'f16');
    expect(t.dtype).toBe('f16');
    const expected = Array.from(data, (v) => f16BitsToF32(f32ToF16Bits(v)));
    expect(Array.from(await rt.read(t))).toEqual(expected);
    t.dispose();
  });

  it('adds and multiplies with a trailing-block broadcast', async () => {
    const rt = await getRuntime();
    const a = rt.upload([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = rt.upload([10, 20, 30], [3]);
    const sum = add(rt, a, b);
    const prod = mul(rt, a, b);
    const [s, p] = await rt.readMany([sum, prod]);
    expect(Array.from(s)).toEqual([11, 22, 33, 14, 25, 36]);
    expect(Array.from(p)).toEqual([10, 40, 90, 40, 100, 180]);
    for (const t of [a, b, sum, prod]) t.dispose();
  });

  it('batches 1,000 dispatches into a handful of submits', async () => {
    const rt = await getRuntime();
    const before = rt.recorder.submits;
    const one = rt.upload([1], [1]);
    let acc = rt.upload([0], [1]);
    for (let i = 0; i < 1000; i++) {
      const next = add(rt, acc, one);
      acc.dispose();
      acc = next;
    }
    expect(Array.from(await rt.read(acc))).toEqual([1000]);
    const submits = rt.recorder.submits - before;
    expect(submits).toBeLessThanOrEqual(Math.ceil(1000 / rt.recorder.batchSize) + 2);
    one.dispose();
    acc.dispose();
  });

  it('reuses pooled buffers: 1,000 alloc/free cycles do not grow the pool', async () => {
    const rt = await getRuntime();
    rt.flush();
    const created = rt.pool.stats().created;
    for (let i = 0; i < 1000; i++) {
      const t = rt.empty([64, 64], 'f32');
      t.dispose();
      rt.flush(); // buffers become reusable once the commands using them are submitted
    }
    expect(rt.pool.stats().created - created).toBeLessThanOrEqual(1);
  });

  it('hands a released buffer to the next GPU write at once, and submits before a host write to it', async () => {
    const rt = await getRuntime();
    rt.flush();
    rt.trim(); // no submitted free buffers to hand out first
    const x = rt.upload([1, 2, 3, 4], [4]);
    const doubled = add(rt, x, x); // recorded, not submitted
    const buffer = x.buffer;
    x.dispose();
    const y = rt.empty([4], 'f32');
    expect(y.buffer).toBe(buffer);
    const submits = rt.recorder.submits;
    y.dispose();
    // The upload reuses the buffer again; writing it before `add` ran would change `doubled`.
    const z = rt.upload([100, 100, 100, 100], [4]);
    expect(z.buffer).toBe(buffer);
    expect(rt.recorder.submits).toBe(submits + 1);
    expect(Array.from(await rt.read(doubled))).toEqual([2, 4, 6, 8]);
    for (const t of [doubled, z]) t.dispose();
  });

  it('scope frees temporaries and keeps what is returned (views keep their base)', async () => {
    const rt = await getRuntime();
    const live = rt.pool.stats().live;
    const kept = await rt.scope(async () => {
      const x = rt.upload([1, 2, 3, 4], [4]);
      const y = add(rt, x, x);
      rt.upload([0], [1]);
      return y.reshape([2, 2]);
    });
    expect(rt.pool.stats().live).toBe(live + 1);
    expect(Array.from(await rt.read(kept))).toEqual([2, 4, 6, 8]);
    kept.base!.dispose();
    expect(rt.pool.stats().live).toBe(live);
  });

  it('rejects a tensor larger than maxStorageBufferBindingSize with a clear error', async () => {
    const rt = await getRuntime();
    const limit = rt.limits.maxStorageBufferBindingSize;
    const n = limit / 4 + 1024;
    expect(() => rt.empty([n], 'f32', 'text_model.embeddings.token_embedding.weight')).toThrow(
      `text_model.embeddings.token_embedding.weight: tensor [${n}] f32 needs ${n * 4} bytes, more than this device's maxStorageBufferBindingSize (${limit}); it must be split`,
    );
  });

  it('caches pipelines by variant, never by shape', async () => {
    const rt = await getRuntime();
    const a = rt.upload([1, 2], [2]);
    const before = rt.kernels.size;
    add(rt, a, a).dispose();
    const afterFirst = rt.kernels.size;
    const big = rt.upload(new Float32Array(5000), [5000]);
    add(rt, big, big).dispose();
    expect(rt.kernels.size).toBe(afterFirst);
    expect(afterFirst - before).toBeLessThanOrEqual(1);
    a.dispose();
    big.dispose();
    await rt.sync();
  });

  it('times each dispatch in a pass of its own (timestamp-query) without changing results', async () => {
    const rt = await Runtime.create({ timestamps: true });
    try {
      expect(rt.features.has('timestamp-query')).toBe(true);
      const a = rt.upload([1, 2, 3], [3]);
      const timer = new DispatchTimer(rt.device, 2);
      rt.recorder.timer = timer;
      const sum = add(rt, a, a);
      const prod = mul(rt, sum, a);
      rt.recorder.timer = null;
      expect(Array.from(await rt.read(prod))).toEqual([2, 8, 18]);
      const times = await timer.read();
      expect(times.map((t) => t.label)).toEqual(['add', 'mul']);
      for (const { ms } of times) expect(ms).toBeGreaterThanOrEqual(0);
      expect(() => timer.next('third')).toThrow('DispatchTimer: more than 2 dispatches');
    } finally {
      await rt.sync();
      rt.destroy();
    }
  });
});

describe('runtime helpers (no GPU)', () => {
  it('pipeline keys cover file, flags, consts and dtypes in canonical order', () => {
    const k1 = KernelRegistry.key({ shader: 'm.wgsl', flags: ['B', 'A'], consts: { Y: 2, X: 1 }, dtypes: { T: 'f16' } });
    const k2 = KernelRegistry.key({ shader: 'm.wgsl', flags: ['A', 'B'], consts: { X: 1, Y: 2 }, dtypes: { T: 'f16' } });
    expect(k1).toBe(k2);
    expect(k1).toBe('m.wgsl|A,B|X=1,Y=2|T=f16|main');
    expect(KernelRegistry.key({ shader: 'm.wgsl', dtypes: { T: 'f32' } })).not.toBe(KernelRegistry.key({ shader: 'm.wgsl', dtypes: { T: 'f16' } }));
  });

  it('buckets sizes: powers of two below 1 MiB, eighth steps above', () => {
    expect(bucketSize(1)).toBe(256);
    expect(bucketSize(257)).toBe(512);
    expect(bucketSize(1 << 20)).toBe(1 << 20);
    expect(bucketSize((1 << 20) + 1)).toBe((1 << 20) + (1 << 18));
    expect(bucketSize(100_000_000)).toBe(100_663_296);
  });

  it('packs params as 4-byte scalars, padded to 16 bytes', () => {
    const bytes = new Params().u32(7).f32(0.5).i32(-1).data();
    expect(bytes.byteLength).toBe(16);
    const view = new DataView(bytes.buffer);
    expect([view.getUint32(0, true), view.getFloat32(4, true), view.getInt32(8, true)]).toEqual([7, 0.5, -1]);
  });
});
