import { decodePng, encodePng } from '../../io/png.js';
import { PaellaVQModel } from '../../models/vqgan/modeling_paella_vq_model.js';
import { openFileSource, writeFileAtomic } from '../../platform/file.js';
import { Runtime } from '../../runtime/device.js';
import type { DType } from '../../runtime/dtype.js';
import { CliError, parseArgs, type Command } from '../command.js';

const USAGE = 'vqgan roundtrip <in.png> <out.png> --model <dir> [--dtype f32|f16]';

async function readBytes(path: string): Promise<Uint8Array> {
  const source = await openFileSource(path);
  try {
    return await source.read(0, source.size);
  } finally {
    await source.close();
  }
}

export const vqgan: Command = {
  name: 'vqgan',
  summary:
    'Stage A (Paella VQGAN): `roundtrip` encodes a PNG to latents and decodes them back (RGB in [0, 1], ' +
    'alpha dropped; width and height multiples of 4 for the released model), writing the clamped result',
  usage: USAGE,
  async run(argv) {
    const args = parseArgs(argv, { values: ['model', 'dtype'] });
    const [action, inPath, outPath, ...extra] = args.positional;
    if (action !== 'roundtrip') throw new CliError(`unknown vqgan action '${action ?? ''}' (one of: roundtrip)`);
    if (!inPath || !outPath || extra.length) throw new CliError(`expected an input and an output PNG: ${USAGE}`);
    const modelDir = args.values.get('model');
    if (!modelDir) throw new CliError(`--model is required: ${USAGE}`);
    const dtype = (args.values.get('dtype') ?? 'f32') as DType;
    if (dtype !== 'f32' && dtype !== 'f16') throw new CliError(`--dtype must be f32 or f16, got '${dtype}'`);

    const image = decodePng(await readBytes(inPath), inPath);
    const [, , height, width] = image.shape;
    const rt = await Runtime.create();
    try {
      const model = await PaellaVQModel.fromPretrained(rt, modelDir, { dtype });
      try {
        const { upDownScaleFactor, levels } = model.config;
        const multiple = upDownScaleFactor * 2 ** (levels - 1);
        if (width % multiple !== 0 || height % multiple !== 0) {
          throw new CliError(`${inPath}: the image is ${width}×${height}; width and height must be multiples of ${multiple}`);
        }
        const input = rt.upload(image.data, image.shape, model.dtype, 'image');
        const latents = await model.encode(input);
        input.dispose();
        const sample = await model.decode(latents, { forceNotQuantize: true });
        latents.dispose();
        const data = await rt.read(sample);
        const shape = [...sample.shape];
        sample.dispose();
        await writeFileAtomic(outPath, [encodePng({ shape, data })]);
      } finally {
        model.dispose();
      }
    } finally {
      rt.destroy();
    }
    console.log(`wrote ${outPath} (${width}×${height})`);
    return 0;
  },
};
