import { describe, expect, it } from 'vitest';
import { replicationPad2d } from '../src/ops/pad.js';
import type { DType } from '../src/runtime/dtype.js';
import { readGoldenOp, roundToF16 } from './helpers/golden_ops.js';
import { getRuntime } from './helpers/gpu.js';
import { nchwToNhwc, nhwcToNchw } from './helpers/layout.js';

// A pad moves values and computes nothing: f32 and f16 (on f16-rounded input) must be exact.
const CASES = ['conv2d_replicationpad_depthwise3x3_0', 'conv2d_replicationpad_depthwise3x3_1'];
const DTYPES: DType[] = ['f32', 'f16'];

describe('replicationPad2d (NHWC) against torch ReplicationPad2d(1)', () => {
  for (const name of CASES) {
    for (const dtype of DTYPES) {
      it(`${name} ${dtype}: out.padded exactly`, async () => {
        const rt = await getRuntime();
        const { tensors } = await readGoldenOp(name);
        const x = tensors.get('x')!;
        const padded = tensors.get('out.padded')!;
        const round = (v: Float32Array) => (dtype === 'f16' ? roundToF16(v) : v);
        const [b, c, h, w] = x.shape;
        const input = rt.upload(nchwToNhwc(round(x.data), x.shape), [b, h, w, c], dtype);
        const out = replicationPad2d(rt, input, 1);
        expect(out.shape).toEqual([b, h + 2, w + 2, c]);
        const got = nhwcToNchw(await rt.read(out), out.shape);
        expect(Array.from(got)).toEqual(Array.from(round(padded.data)));
        input.dispose();
        out.dispose();
      });
    }
  }

  it('pads by 2 (edge rows and columns repeated twice) and rejects a non-4-D input', async () => {
    const rt = await getRuntime();
    // [1, 2, 2, 1]: values 1 2 / 3 4.
    const input = rt.upload([1, 2, 3, 4], [1, 2, 2, 1]);
    const out = replicationPad2d(rt, input, 2);
    expect(Array.from(await rt.read(out))).toEqual([
      1, 1, 1, 2, 2, 2,
      1, 1, 1, 2, 2, 2,
      1, 1, 1, 2, 2, 2,
      3, 3, 3, 4, 4, 4,
      3, 3, 3, 4, 4, 4,
      3, 3, 3, 4, 4, 4,
    ]);
    expect(() => replicationPad2d(rt, input.reshape([4]), 1)).toThrow('replicationPad2d: expected NHWC input [B, H, W, C], got [4]');
    input.dispose();
    out.dispose();
  });
});
