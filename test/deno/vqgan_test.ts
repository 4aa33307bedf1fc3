// One model forward on Deno's WebGPU: the tiny Paella VQGAN against its golden io file (README io tolerance).
import { openSafetensors } from '../../dist/io/safetensors.js';
import { PaellaVQModel } from '../../dist/models/vqgan/modeling_paella_vq_model.js';
import { Runtime } from '../../dist/runtime/device.js';
import { assertClose, assertShape, FIXTURES } from './golden.ts';

/** ../shared/golden/README.md §2, io/*. */
const IO_TOL = { atol: 1e-5, rtol: 1e-4 };

Deno.test('vqgan: encode and decode (with and without quantizing) match io/vqgan.safetensors', async () => {
  const rt = await Runtime.create();
  const golden = await openSafetensors(`${FIXTURES}io/vqgan.safetensors`);
  const model = await PaellaVQModel.fromPretrained(rt, `${FIXTURES}pipelines/wuerstchen/vqgan`);
  try {
    const input = async (name: string) => rt.upload(await golden.readF32(name), golden.tensors.get(name).shape, 'f32', name);
    const check = async (name: string, t: { shape: number[] }) => {
      assertShape(t.shape, golden.tensors.get(name).shape, name);
      assertClose(await rt.read(t), await golden.readF32(name), IO_TOL, name);
    };
    const image = await input('in.image');
    await check('encode.latents', await model.encode(image));
    const latents = await input('encode.latents');
    await check('decode.force_not_quantize_true.sample', await model.decode(latents, { forceNotQuantize: true }));
    await check('decode.force_not_quantize_false.sample', await model.decode(latents, { forceNotQuantize: false }));
  } finally {
    model.dispose();
    await golden.close();
    rt.destroy();
  }
});
