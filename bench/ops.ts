/** The `ops` suite: GEMMs, attention, implicit-GEMM convolutions and the bandwidth-bound ops on the models' real shapes. */
import type { Runtime } from '../src/runtime/device.js';
import { benchAttention } from './ops_attention.js';
import { benchConv } from './ops_conv.js';
import { benchMatmul } from './ops_matmul.js';
import { benchMemoryOps } from './ops_memory.js';
import type { BenchOptions } from './options.js';
import type { BenchRow } from './report.js';

export async function benchOps(rt: Runtime, options: BenchOptions): Promise<BenchRow[]> {
  return [
    ...(await benchMatmul(rt, options)),
    ...(await benchAttention(rt, options)),
    ...(await benchConv(rt, options)),
    ...(await benchMemoryOps(rt, options)),
  ];
}
