/**
 * `wuerstchen forward vqgan.encode | vqgan.quantize | vqgan.decode`: a PaellaVQModel folder run as
 * the golden io/vqgan file was made (`latents = vqgan.encode(image).latents; z_q, loss, (_, _,
 * indices) = vqgan.vquantizer(latents); vqgan.decode(latents, force_not_quantize=True / False)`),
 * reading and writing its tensor names. quantize and decode take the encoder's output under its
 * golden name, `encode.latents`, so the golden file itself is a valid input to all three.
 */
import { readIndices } from '../../ops/vq.js';
import { requireInput, type ForwardComponent, type ForwardContext, type NamedTensor } from '../../nn/forward_component.js';
import type { Tensor } from '../../runtime/tensor.js';
import { PaellaVQModel } from './modeling_paella_vq_model.js';

async function withModel<T>(ctx: ForwardContext, fn: (model: PaellaVQModel) => Promise<T>): Promise<T> {
  const model = await PaellaVQModel.fromPretrained(ctx.rt, ctx.modelDir, { dtype: ctx.dtype });
  try {
    return await fn(model);
  } finally {
    model.dispose();
  }
}

function upload(ctx: ForwardContext, model: PaellaVQModel, name: string): Tensor {
  const input = requireInput(ctx, name);
  return ctx.rt.upload(input.data, input.shape, model.dtype, name);
}

/** Reads device tensors back under their names and frees them. */
async function readNamed(ctx: ForwardContext, named: [string, Tensor][]): Promise<Map<string, NamedTensor>> {
  const values = await ctx.rt.readMany(named.map(([, t]) => t));
  for (const [, t] of named) t.dispose();
  return new Map(named.map(([name, t], i) => [name, { shape: [...t.shape], data: values[i] }]));
}

// No rt.scope around the model calls: the capture's copies live in the caller's scope until it reads them.

export const vqganEncodeComponent: ForwardComponent = {
  golden: 'vqgan',
  inputs: ['in.image'],
  run: (ctx) =>
    withModel(ctx, async (model) => {
      const image = upload(ctx, model, 'in.image');
      const latents = await model.encode(image, { capture: ctx.capture });
      image.dispose();
      return readNamed(ctx, [['encode.latents', latents]]);
    }),
};

/**
 * Besides quantize.*, a capture writes the vquantizer's tuple outputs (`act.vquantizer.out.0/.1/.2.2`:
 * z_q, loss, indices) and its embedding lookup (`act.vquantizer.embedding.out`: the codebook rows
 * of the indices, gathered here from the device codebook).
 */
export const vqganQuantizeComponent: ForwardComponent = {
  golden: 'vqgan',
  inputs: ['encode.latents'],
  run: (ctx) =>
    withModel(ctx, async (model) => {
      const { rt } = ctx;
      const latents = upload(ctx, model, 'encode.latents');
      const { quantized, indices, loss } = await model.quantize(latents);
      latents.dispose();
      const codes = await readIndices(rt, indices);
      indices.dispose();
      const outputs = await readNamed(ctx, [
        ['quantize.z_q', quantized],
        ['quantize.loss', loss],
      ]);
      const indexTensor: NamedTensor = { shape: [codes.length], data: Float32Array.from(codes), dtype: 'I64' };
      outputs.set('quantize.indices', indexTensor);
      if (ctx.capture) {
        const codebook = model.vquantizer.codebook;
        const [, dim] = codebook.shape;
        const table = await rt.read(codebook);
        const rows = new Float32Array(codes.length * dim);
        codes.forEach((code, i) => rows.set(table.subarray(code * dim, (code + 1) * dim), i * dim));
        outputs.set('act.vquantizer.embedding.out', { shape: [codes.length, dim], data: rows });
        outputs.set('act.vquantizer.out.0', outputs.get('quantize.z_q')!);
        outputs.set('act.vquantizer.out.1', outputs.get('quantize.loss')!);
        outputs.set('act.vquantizer.out.2.2', indexTensor);
      }
      return outputs;
    }),
};

/** Captures are recorded during decode(force_not_quantize=True) only, as in the golden file. */
export const vqganDecodeComponent: ForwardComponent = {
  golden: 'vqgan',
  inputs: ['encode.latents'],
  run: (ctx) =>
    withModel(ctx, async (model) => {
      const latents = upload(ctx, model, 'encode.latents');
      const direct = await model.decode(latents, { forceNotQuantize: true, capture: ctx.capture });
      const quantized = await model.decode(latents, { forceNotQuantize: false });
      latents.dispose();
      return readNamed(ctx, [
        ['decode.force_not_quantize_true.sample', direct],
        ['decode.force_not_quantize_false.sample', quantized],
      ]);
    }),
};
