// Deno suite: the compiled package (dist/) on Deno's built-in WebGPU. Run with `npm run test:deno`.
import { Runtime } from '../../dist/runtime/device.js';
import { add } from '../../dist/ops/elementwise.js';

function assertEquals(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: got ${a}, expected ${e}`);
}

Deno.test('runtime: adapter, upload, dispatch and readback on Deno WebGPU', async () => {
  const rt = await Runtime.create();
  try {
    const a = rt.upload([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = rt.upload([10, 20, 30], [3]);
    const sum = add(rt, a, b);
    assertEquals(Array.from(await rt.read(sum)), [11, 22, 33, 14, 25, 36], 'a + b');
    const h = rt.upload([0.1, 0.2, 0.3], [3], 'f16');
    assertEquals(h.dtype, rt.hasF16 ? 'f16' : 'f32', 'storage dtype');
  } finally {
    rt.destroy();
  }
});
