import { openSafetensors } from '../../io/safetensors.js';
import { encodePng } from '../../io/png.js';
import { PipelineDump } from '../../pipeline/pipeline_dump.js';
import { WuerstchenDecoderPipeline } from '../../pipeline/pipeline_wuerstchen.js';
import { stageRequests, WuerstchenPipeline, type GenerateOptions } from '../../pipeline/pipeline_wuerstchen_combined.js';
import type { StepInfo } from '../../pipeline/pipeline_wuerstchen_prior.js';
import { resolvePipelineFolder } from '../../pipeline/model_index.js';
import type { HostTensor } from '../../pipeline/host_tensor.js';
import { TorchGenerator } from '../../pipeline/torch_generator.js';
import { writeFileAtomic } from '../../platform/file.js';
import { Runtime } from '../../runtime/device.js';
import type { DType } from '../../runtime/dtype.js';
import { CliError, parseArgs, type Command } from '../command.js';

const USAGE = `generate "prompt" -o out.png [options]

  --negative-prompt <text>       what the image should not show
  --width <px> --height <px>     image size (default 1024×1024)
  --seed <n>                     torch.Generator("cpu").manual_seed(n): same noise as diffusers (default: random)
  --prior-steps <n>              Stage C steps (default 60)      --prior-guidance <w>    (default 4.0)
  --decoder-steps <n>            Stage B steps (default 12)      --decoder-guidance <w>  (default 0.0)
  --images <n>                   images per prompt (default 1); out.png becomes out_0.png, out_1.png, …
  --prior <hub id | dir>         default warp-ai/wuerstchen-prior
  --decoder <hub id | dir>       default warp-ai/wuerstchen
  --revision <rev>               Hub revision of both repos (default main)
  --dtype f32|f16                weight and activation storage (default f32; f16 keeps f32 accumulation)
  --low-memory                   load and free one stage at a time
  --dump <run.safetensors>       write text embeddings, noise, every step's latents and the image
                                 under the tensor names of the golden e2e file
  --image-embeddings <file>      run only the decoder on the Stage C embeddings in <file>
                                 (tensor 'prior.image_embeddings'), as WuerstchenDecoderPipeline does

Weights are downloaded once into the Hugging Face cache ($HF_HOME/hub; HF_TOKEN and HF_HUB_OFFLINE=1 are honoured).`;

function number(args: Map<string, string>, name: string): number | undefined {
  const raw = args.get(name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || Number.isNaN(value)) throw new CliError(`--${name} must be a number, got '${raw}'`);
  return value;
}

function outputPaths(out: string, count: number): string[] {
  if (count === 1) return [out];
  const dot = out.toLowerCase().endsWith('.png') ? out.length - 4 : out.length;
  return Array.from({ length: count }, (_, i) => `${out.slice(0, dot)}_${i}${out.slice(dot)}`);
}

/** One progress line per stage, redrawn in place on a terminal. */
function progress(): (info: StepInfo) => void {
  const tty = process.stderr.isTTY;
  return ({ stage, step, steps }) => {
    const done = step + 1;
    const width = 30;
    const bar = '#'.repeat(Math.round((done / steps) * width)).padEnd(width, '.');
    if (tty) process.stderr.write(`\r${stage.padEnd(7)} [${bar}] ${done}/${steps}${done === steps ? '\n' : ''}`);
    else if (done === steps) process.stderr.write(`${stage}: ${steps} steps done\n`);
  };
}

async function readEmbeddings(path: string): Promise<HostTensor> {
  const reader = await openSafetensors(path);
  try {
    const info = reader.tensors.get('prior.image_embeddings');
    if (!info) throw new CliError(`${path}: no tensor 'prior.image_embeddings'`);
    return { shape: info.shape, data: await reader.readF32('prior.image_embeddings') };
  } finally {
    await reader.close();
  }
}

export const generate: Command = {
  name: 'generate',
  summary: 'text to image with the Würstchen v2 pipelines (downloads the weights on first use)',
  usage: USAGE,
  async run(argv) {
    const args = parseArgs(
      argv.map((a) => (a === '-o' ? '--out' : a)),
      {
        values: [
          'out', 'negative-prompt', 'width', 'height', 'seed', 'prior-steps', 'prior-guidance', 'decoder-steps',
          'decoder-guidance', 'images', 'prior', 'decoder', 'revision', 'dtype', 'dump', 'image-embeddings',
        ],
        switches: ['low-memory'],
      },
    );
    const [prompt, ...extra] = args.positional;
    if (prompt === undefined || extra.length) throw new CliError(`expected one prompt: ${USAGE.split('\n')[0]}`);
    const out = args.values.get('out');
    if (!out) throw new CliError(`-o <out.png> is required`);
    const dtype = (args.values.get('dtype') ?? 'f32') as DType;
    if (dtype !== 'f32' && dtype !== 'f16') throw new CliError(`--dtype must be f32 or f16, got '${dtype}'`);
    const seedValue = number(args.values, 'seed');
    if (seedValue !== undefined && (!Number.isSafeInteger(seedValue) || seedValue < 0)) {
      throw new CliError(`--seed must be a non-negative integer, got '${args.values.get('seed')}'`);
    }
    const seed = seedValue ?? Math.floor(Math.random() * 2 ** 32);
    const negativePrompt = args.values.get('negative-prompt');
    const hub = { revision: args.values.get('revision') };
    const generator = new TorchGenerator(seed);
    const timings: [string, number][] = [];
    let mark = performance.now();
    const lap = (label: string) => {
      const now = performance.now();
      timings.push([label, now - mark]);
      mark = now;
    };

    const request: GenerateOptions = {
      generator,
      callback: progress(),
      prompt,
      negativePrompt,
      width: number(args.values, 'width'),
      height: number(args.values, 'height'),
      numImagesPerPrompt: number(args.values, 'images'),
      priorSteps: number(args.values, 'prior-steps'),
      priorGuidanceScale: number(args.values, 'prior-guidance'),
      decoderSteps: number(args.values, 'decoder-steps'),
      decoderGuidanceScale: number(args.values, 'decoder-guidance'),
    };
    // Settings are checked before anything is downloaded or loaded.
    const { decoder: decoderRequest } = stageRequests(request);
    const embeddingsPath = args.values.get('image-embeddings');
    const imageEmbeddings = embeddingsPath ? await readEmbeddings(embeddingsPath) : undefined;

    const rt = await Runtime.create();
    try {
      const dump = args.values.has('dump') ? new PipelineDump(rt) : undefined;
      let images: HostTensor;
      if (imageEmbeddings) {
        const decoder = await WuerstchenDecoderPipeline.fromPretrained(
          rt,
          await resolvePipelineFolder(args.values.get('decoder') ?? 'warp-ai/wuerstchen', hub),
          { dtype },
        );
        lap('load');
        try {
          images = await decoder.call({ ...decoderRequest, imageEmbeddings, numImagesPerPrompt: request.numImagesPerPrompt, dump });
        } finally {
          decoder.dispose();
        }
      } else {
        const pipeline = await WuerstchenPipeline.fromPretrained(
          rt,
          args.values.get('prior') ?? 'warp-ai/wuerstchen-prior',
          args.values.get('decoder') ?? 'warp-ai/wuerstchen',
          { dtype, lowMemory: args.switches.has('low-memory'), hub },
        );
        lap('load');
        try {
          ({ images } = await pipeline.generate({ ...request, dump }));
        } finally {
          pipeline.dispose();
        }
      }
      lap('generate');
      const text = {
        prompt,
        negative_prompt: negativePrompt ?? '',
        seed: String(seed),
        settings: JSON.stringify(Object.fromEntries(args.values)),
        software: 'wuerstchen-webgpu',
      };
      const paths = outputPaths(out, images.shape[0]);
      for (const [i, path] of paths.entries()) await writeFileAtomic(path, [encodePng(images, i, text)]);
      if (dump) await dump.write(args.values.get('dump')!, { seed: String(seed), prompt });
      const peak = rt.pool.stats().peakBytesAllocated;
      console.log(`wrote ${paths.join(', ')} (seed ${seed})`);
      console.log(
        `time: ${timings.map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`).join(', ')}; ` +
          `peak device memory ${(peak / 2 ** 20).toFixed(0)} MiB`,
      );
      return 0;
    } finally {
      rt.destroy();
    }
  },
};
