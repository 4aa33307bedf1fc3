import { openSafetensors, writeSafetensors, type TensorToWrite } from '../../io/safetensors.js';
import { Capture } from '../../nn/capture.js';
import type { ForwardComponent, NamedTensor } from '../../nn/forward_component.js';
import { Runtime } from '../../runtime/device.js';
import type { DType } from '../../runtime/dtype.js';
import { CliError, parseArgs, type Command } from '../command.js';

// Components are loaded lazily so a run only compiles the model it needs.
const components: Record<string, () => Promise<ForwardComponent>> = {
  decoder: async () => (await import('../../models/stage_b/decoder_component.js')).decoderComponent,
  prior: async () => (await import('../../models/stage_c/prior_component.js')).priorComponent,
  text_encoder: async () => (await import('../../models/clip/text_encoder_component.js')).textEncoderComponent,
  'vqgan.encode': async () => (await import('../../models/vqgan/vqgan_components.js')).vqganEncodeComponent,
  'vqgan.quantize': async () => (await import('../../models/vqgan/vqgan_components.js')).vqganQuantizeComponent,
  'vqgan.decode': async () => (await import('../../models/vqgan/vqgan_components.js')).vqganDecodeComponent,
};

const USAGE =
  'forward <component> --model <dir> --inputs <in.safetensors> --out <out.safetensors> [--dtype f32|f16] [--capture]';

async function readInputs(path: string): Promise<Map<string, NamedTensor>> {
  const reader = await openSafetensors(path);
  try {
    const inputs = new Map<string, NamedTensor>();
    for (const [name, info] of reader.tensors) {
      if (info.dtype === 'I64') {
        inputs.set(name, { shape: info.shape, data: Float32Array.from(await reader.readI64AsNumbers(name)), dtype: 'I64' });
      } else {
        inputs.set(name, { shape: info.shape, data: await reader.readF32(name) });
      }
    }
    return inputs;
  } finally {
    await reader.close();
  }
}

function toWrite(t: NamedTensor): TensorToWrite {
  return t.dtype === 'I64'
    ? { dtype: 'I64', shape: t.shape, data: BigInt64Array.from(t.data, (v) => BigInt(v)) }
    : { dtype: 'F32', shape: t.shape, data: t.data };
}

export const forward: Command = {
  name: 'forward',
  summary: 'run one model component on a safetensors file of inputs (golden tensor names)',
  usage:
    `${USAGE}\n\ncomponents: ${Object.keys(components).join(', ')}\n\n` +
    "vqgan.encode reads 'in.image'; vqgan.quantize and vqgan.decode read the latents as 'encode.latents' " +
    '(vqgan.encode\'s output), so a golden io/vqgan file is a valid input to all three.',
  async run(argv) {
    const args = parseArgs(argv, { values: ['model', 'inputs', 'out', 'dtype'], switches: ['capture'] });
    const [name] = args.positional;
    const load = components[name ?? ''];
    if (!load) throw new CliError(`unknown component '${name ?? ''}' (one of: ${Object.keys(components).join(', ')})`);
    const need = (flag: string) => {
      const v = args.values.get(flag);
      if (!v) throw new CliError(`--${flag} is required: ${USAGE}`);
      return v;
    };
    const dtype = (args.values.get('dtype') ?? 'f32') as DType;
    if (dtype !== 'f32' && dtype !== 'f16') throw new CliError(`--dtype must be f32 or f16, got '${dtype}'`);
    const [modelDir, inputsPath, outPath] = [need('model'), need('inputs'), need('out')];
    const component = await load();
    const inputs = await readInputs(inputsPath);
    const rt = await Runtime.create();
    try {
      const capture = args.switches.has('capture') ? new Capture(rt) : undefined;
      const outputs = await component.run({ rt, modelDir, dtype, inputs, capture });
      if (capture) for (const [k, v] of await capture.read()) outputs.set(k, v);
      const tensors: Record<string, TensorToWrite> = {};
      for (const [k, v] of outputs) tensors[k] = toWrite(v);
      await writeSafetensors(outPath, tensors, { component: name, dtype });
      console.log(`wrote ${outputs.size} tensors to ${outPath}`);
      return 0;
    } finally {
      rt.destroy();
    }
  },
};
