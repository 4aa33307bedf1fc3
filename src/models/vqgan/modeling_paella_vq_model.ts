// Mirrors diffusers v0.21.0 src/diffusers/pipelines/wuerstchen/modeling_paella_vq_model.py
// (MixingResidualBlock, PaellaVQModel); `vquantizer` is diffusers' VectorQuantizer(legacy=False,
// beta=0.25) of src/diffusers/models/vae.py. Activations are NHWC inside; encode/quantize/decode take
// and return NCHW like the PyTorch model.
import { loadPretrainedFolder } from '../../nn/pretrained.js';
import type { Capture, CaptureLayout } from '../../nn/capture.js';
import { WeightLoader, type LoadProgressCallback, type WeightScope } from '../../nn/weight_scope.js';
import { activation } from '../../ops/activation.js';
import { foldBatchNorm } from '../../ops/batch_norm.js';
import { conv2d, conv2dWeightToTapMajor } from '../../ops/conv2d.js';
import { convTranspose2d, convTranspose2dWeightToTapMajor } from '../../ops/conv_transpose2d.js';
import { addScaled, affine } from '../../ops/elementwise.js';
import { layerNorm } from '../../ops/layer_norm.js';
import { linear } from '../../ops/matmul.js';
import { replicationPad2d } from '../../ops/pad.js';
import { rowsCopyable, sliceRows, writeRows } from '../../ops/row_bands.js';
import { nchwToNhwc, nhwcToNchw, pixelShuffle, pixelUnshuffle } from '../../ops/shuffle.js';
import { vectorQuantize } from '../../ops/vq.js';
import type { Runtime } from '../../runtime/device.js';
import { bytesPerElement, type DType } from '../../runtime/dtype.js';
import { Tensor } from '../../runtime/tensor.js';
import { channelLevels, parsePaellaVQConfig, type PaellaVQConfig } from './configuration_paella_vq_model.js';

export interface PaellaVQModelOptions {
  /** Device dtype of the weights and activations (f16: f16 storage, f32 arithmetic). Default f32. */
  dtype?: DType;
  /** Called after each tensor is loaded (see WeightLoaderOptions). */
  onProgress?: LoadProgressCallback;
  /** Check keys and shapes only (see WeightLoader). */
  dryRun?: boolean;
}

export interface PaellaVQForwardOptions {
  /** Records module outputs under the golden names `act.<module path>.out`. */
  capture?: Capture;
}

export interface PaellaVQDecodeOptions extends PaellaVQForwardOptions {
  /** Decode the latents as given (true, what the pipelines do) or snap them to the codebook first. */
  forceNotQuantize?: boolean;
  /**
   * Largest feature map of the last level (after the last up-sampler) before that level runs in
   * bands of rows; default: the device's storage binding limit. Not with a capture.
   */
  bandBytes?: number;
}

export interface VQOutput {
  /** [B, C, H, W] z_q: latents + (code − latents), as diffusers returns it. */
  quantized: Tensor;
  /** [B·H·W] f32 code indices, row (b·H + y)·W + x; `readIndices` (ops/vq.ts) reads them as integers. */
  indices: Tensor;
  /** [1] f32: the forward value of the VQ loss, 1.25 · mean((z_q − latents)²). */
  loss: Tensor;
}

/** Per-call state threaded through the modules. */
interface ForwardState {
  rt: Runtime;
  capture?: Capture;
}

/** An NHWC → NHWC module; it records its own output (and its children's) under `path`. */
interface Module {
  forward(state: ForwardState, x: Tensor): Tensor;
  /** The tensors it owns (not views), for `dispose`. */
  tensors(): Tensor[];
}

const NORM_EPS = 1e-6;
const BATCH_NORM_EPS = 1e-5;
const VQ_BETA = 0.25;
/**
 * The channelwise MLP runs on token chunks whose hidden activation stays below this (and below the
 * adapter's binding limit): at 256×256 tokens the real model's hidden is 400 MB in f32.
 */
const MLP_CHUNK_BYTES = 64 << 20;

function record(state: ForwardState, path: string, t: Tensor, layout: CaptureLayout = 'nhwc'): Tensor {
  state.capture?.record(path, t, layout);
  return t;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Rows [start, start + count) of a row-major [rows, C] tensor, as a view sharing its buffer. */
function rowView(t: Tensor, start: number, count: number): Tensor {
  const cols = t.shape[t.shape.length - 1];
  const byteOffset = t.byteOffset + start * cols * bytesPerElement(t.dtype);
  return new Tensor(t.owner, [count, cols], t.dtype, t.buffer, byteOffset, t.base ?? t);
}

/**
 * A PyTorch conv weight reordered tap-major for conv2d / convTranspose2d. Dry runs hand back a
 * stand-in with nothing to reorder; the upload is then a placeholder too.
 */
async function tapMajorWeight(
  scope: WeightScope,
  shape: readonly number[],
  reorder: (data: Float32Array, shape: readonly number[]) => Float32Array,
  tapShape: readonly number[],
): Promise<Tensor> {
  const data = await scope.host('weight', shape);
  return scope.upload(scope.loader.options.dryRun ? data : reorder(data, shape), tapShape, 'weight');
}

/** nn.Conv2d with a 1×1 kernel: over NHWC a Linear over channels, its [Cout, Cin, 1, 1] weight read as [Cout, Cin]. */
class PointwiseConv2d implements Module {
  private constructor(
    readonly path: string,
    readonly weight: Tensor,
    readonly bias: Tensor | undefined,
  ) {}

  static async load(scope: WeightScope, inChannels: number, outChannels: number, hasBias = true): Promise<PointwiseConv2d> {
    const weight = await scope.tensor('weight', [outChannels, inChannels, 1, 1]);
    const bias = hasBias ? await scope.tensor('bias', [outChannels]) : undefined;
    return new PointwiseConv2d(scope.prefix, weight, bias);
  }

  forward(state: ForwardState, x: Tensor): Tensor {
    const [cout, cin] = this.weight.shape;
    return record(state, this.path, linear(state.rt, x, this.weight.reshape([cout, cin]), this.bias));
  }

  tensors(): Tensor[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }
}

/** nn.Conv2d(cin, cout, kernel_size=4, stride=2, padding=1): the encoder's down-sampler. */
class Conv2d implements Module {
  private constructor(
    readonly path: string,
    readonly weight: Tensor,
    readonly bias: Tensor,
  ) {}

  static async load(scope: WeightScope, inChannels: number, outChannels: number): Promise<Conv2d> {
    const weight = await tapMajorWeight(scope, [outChannels, inChannels, 4, 4], conv2dWeightToTapMajor, [4, 4, outChannels, inChannels]);
    return new Conv2d(scope.prefix, weight, await scope.tensor('bias', [outChannels]));
  }

  forward(state: ForwardState, x: Tensor): Tensor {
    return record(state, this.path, conv2d(state.rt, x, this.weight, this.bias, { stride: 2, padding: 1 }));
  }

  tensors(): Tensor[] {
    return [this.weight, this.bias];
  }
}

/** nn.ConvTranspose2d(cin, cout, kernel_size=4, stride=2, padding=1): the decoder's up-sampler. */
class ConvTranspose2d implements Module {
  private constructor(
    readonly path: string,
    readonly weight: Tensor,
    readonly bias: Tensor,
  ) {}

  static async load(scope: WeightScope, inChannels: number, outChannels: number): Promise<ConvTranspose2d> {
    const weight = await tapMajorWeight(
      scope,
      [inChannels, outChannels, 4, 4],
      convTranspose2dWeightToTapMajor,
      [4, 4, outChannels, inChannels],
    );
    return new ConvTranspose2d(scope.prefix, weight, await scope.tensor('bias', [outChannels]));
  }

  forward(state: ForwardState, x: Tensor): Tensor {
    return record(state, this.path, convTranspose2d(state.rt, x, this.weight, this.bias, { stride: 2, padding: 1 }));
  }

  tensors(): Tensor[] {
    return [this.weight, this.bias];
  }
}

/**
 * nn.BatchNorm2d in eval mode: folded at load time into a per-channel scale and shift with torch's
 * own f32 steps (ops/batch_norm.ts), kept in f32 whatever the model dtype.
 */
class BatchNorm2d implements Module {
  private constructor(
    readonly path: string,
    readonly scale: Tensor,
    readonly shift: Tensor,
  ) {}

  static async load(scope: WeightScope, channels: number): Promise<BatchNorm2d> {
    const shape = [channels];
    const folded = foldBatchNorm(
      {
        weight: await scope.host('weight', shape),
        bias: await scope.host('bias', shape),
        runningMean: await scope.host('running_mean', shape),
        runningVar: await scope.host('running_var', shape),
      },
      BATCH_NORM_EPS,
    );
    // torch saves this 0-d counter with shape []; some writers store it as [1].
    const counter = scope.loader.reader.tensors.get(scope.key('num_batches_tracked'));
    scope.skip('num_batches_tracked', counter?.shape.length === 1 && counter.shape[0] === 1 ? [1] : []);
    return new BatchNorm2d(
      scope.prefix,
      scope.upload(folded.scale, shape, 'scale', 'f32'),
      scope.upload(folded.shift, shape, 'shift', 'f32'),
    );
  }

  forward(state: ForwardState, x: Tensor): Tensor {
    return record(state, this.path, affine(state.rt, x, this.scale, this.shift));
  }

  tensors(): Tensor[] {
    return [this.scale, this.shift];
  }
}

/** nn.Sequential: its output is its last child's, so it records nothing itself. */
class Sequential implements Module {
  constructor(readonly modules: readonly Module[]) {}

  forward(state: ForwardState, x: Tensor): Tensor {
    let h = x;
    for (const module of this.modules) {
      const next = module.forward(state, h);
      if (h !== x) h.dispose();
      h = next;
    }
    return h;
  }

  tensors(): Tensor[] {
    return this.modules.flatMap((m) => m.tensors());
  }
}

/**
 * The six `gammas` of a MixingResidualBlock as the forward uses them: norm1's output is scaled by
 * (1 + gammas[0]) and shifted by gammas[1], the depthwise branch is scaled by gammas[2]; norm2 and the
 * channelwise branch likewise with gammas[3], [4] and [5]. The norm modulations are per-channel f32
 * vectors (LayerNorm affine parameters); the branch scales are 1-element tensors in the model dtype.
 */
class Modulation {
  private constructor(
    readonly scale1: Tensor,
    readonly shift1: Tensor,
    /** gammas[2] and [5], the branch weights: host values, as `addScaled` takes them. */
    readonly depthwiseGamma: number,
    readonly scale2: Tensor,
    readonly shift2: Tensor,
    readonly channelwiseGamma: number,
  ) {}

  static async load(scope: WeightScope, channels: number): Promise<Modulation> {
    const g = await scope.host('gammas', [6]);
    const perChannel = (value: number, label: string) =>
      scope.upload(new Float32Array(channels).fill(value), [channels], label, 'f32');
    return new Modulation(
      perChannel(Math.fround(1 + g[0]), 'gammas[0]'),
      perChannel(g[1], 'gammas[1]'),
      g[2],
      perChannel(Math.fround(1 + g[3]), 'gammas[3]'),
      perChannel(g[4], 'gammas[4]'),
      g[5],
    );
  }

  tensors(): Tensor[] {
    return [this.scale1, this.shift1, this.scale2, this.shift2];
  }
}

/**
 * Paella's residual block: LayerNorm (no affine, eps 1e-6) over channels, modulated, then a
 * replication-padded depthwise 3×3 conv; LayerNorm again, modulated, then the channelwise MLP
 * Linear → GELU → Linear; each branch scaled by its gamma and added to the input.
 */
export class MixingResidualBlock implements Module {
  private constructor(
    readonly path: string,
    readonly channels: number,
    readonly embedDim: number,
    readonly modulation: Modulation,
    readonly depthwiseWeight: Tensor,
    readonly depthwiseBias: Tensor,
    readonly channelwise0: { weight: Tensor; bias: Tensor },
    readonly channelwise2: { weight: Tensor; bias: Tensor },
  ) {}

  static async load(scope: WeightScope, inpChannels: number, embedDim: number): Promise<MixingResidualBlock> {
    const c = inpChannels;
    const depthwise = scope.pp('depthwise').pp(1);
    const fc1 = scope.pp('channelwise').pp(0);
    const fc2 = scope.pp('channelwise').pp(2);
    return new MixingResidualBlock(
      scope.prefix,
      c,
      embedDim,
      await Modulation.load(scope, c),
      await tapMajorWeight(depthwise, [c, 1, 3, 3], conv2dWeightToTapMajor, [3, 3, c, 1]),
      await depthwise.tensor('bias', [c]),
      { weight: await fc1.tensor('weight', [embedDim, c]), bias: await fc1.tensor('bias', [embedDim]) },
      { weight: await fc2.tensor('weight', [c, embedDim]), bias: await fc2.tensor('bias', [c]) },
    );
  }

  /**
   * Without a capture, the modulation is LayerNorm's affine, the padding the conv's, GELU the first
   * Linear's epilogue, and the MLP runs in token chunks (`channelwiseChunked`). A capture needs each
   * module's own output, so it runs them one by one.
   */
  forward(state: ForwardState, x: Tensor): Tensor {
    const { rt, capture } = state;
    const m = this.modulation;
    const c = this.channels;
    const at = (name: string) => `${this.path}.${name}`;

    let depthwise: Tensor;
    if (!capture) {
      const xTemp = layerNorm(rt, x, { eps: NORM_EPS, weight: m.scale1, bias: m.shift1 });
      depthwise = conv2d(rt, xTemp, this.depthwiseWeight, this.depthwiseBias, { groups: c, padding: 1, paddingMode: 'replicate' });
      xTemp.dispose();
    } else {
      const norm1 = record(state, at('norm1'), layerNorm(rt, x, { eps: NORM_EPS }), 'same');
      const xTemp = affine(rt, norm1, m.scale1, m.shift1);
      const padded = record(state, at('depthwise.0'), replicationPad2d(rt, xTemp, 1));
      depthwise = record(state, at('depthwise.1'), conv2d(rt, padded, this.depthwiseWeight, this.depthwiseBias, { groups: c }));
      for (const t of [norm1, xTemp, padded]) t.dispose();
    }
    const afterDepthwise = addScaled(rt, x, depthwise, m.depthwiseGamma);
    depthwise.dispose();

    let channelwise: Tensor;
    if (!capture) {
      const xTemp = layerNorm(rt, afterDepthwise, { eps: NORM_EPS, weight: m.scale2, bias: m.shift2 });
      channelwise = this.channelwiseChunked(rt, xTemp);
      xTemp.dispose();
    } else {
      const norm2 = record(state, at('norm2'), layerNorm(rt, afterDepthwise, { eps: NORM_EPS }), 'same');
      const xTemp = affine(rt, norm2, m.scale2, m.shift2);
      const { weight: w1, bias: b1 } = this.channelwise0;
      const { weight: w2, bias: b2 } = this.channelwise2;
      const hidden = record(state, at('channelwise.0'), linear(rt, xTemp, w1, b1), 'same');
      const activated = record(state, at('channelwise.1'), activation(rt, hidden, 'gelu'), 'same');
      channelwise = record(state, at('channelwise.2'), linear(rt, activated, w2, b2), 'same');
      for (const t of [norm2, xTemp, hidden, activated]) t.dispose();
    }
    const out = addScaled(rt, afterDepthwise, channelwise, m.channelwiseGamma);
    afterDepthwise.dispose();
    channelwise.dispose();
    return record(state, this.path, out);
  }

  /**
   * Linear → GELU → Linear over the rows of `xTemp` [..., C], in chunks of tokens whose hidden
   * [rows, embed_dim] stays within MLP_CHUNK_BYTES and the binding limit; each chunk writes its rows
   * of the output in place, and the next chunk reuses the hidden's buffer.
   */
  channelwiseChunked(rt: Runtime, xTemp: Tensor): Tensor {
    const { weight: w1, bias: b1 } = this.channelwise0;
    const { weight: w2, bias: b2 } = this.channelwise2;
    const rows = xTemp.size / this.channels;
    const chunk = this.mlpChunkRows(rt, rows, xTemp.dtype);
    if (chunk >= rows) {
      const hidden = linear(rt, xTemp, w1, b1, { act: 'gelu' });
      const out = linear(rt, hidden, w2, b2);
      hidden.dispose();
      return out;
    }
    const out = rt.empty(xTemp.shape, xTemp.dtype, `${this.path}.channelwise`);
    for (let start = 0; start < rows; start += chunk) {
      const count = Math.min(chunk, rows - start);
      const input = rowView(xTemp, start, count);
      const hidden = linear(rt, input, w1, b1, { act: 'gelu' });
      linear(rt, hidden, w2, b2, { out: rowView(out, start, count) });
      hidden.dispose();
    }
    return out;
  }

  /**
   * Tokens per MLP chunk: as many as the hidden budget allows, rounded down to a multiple that keeps
   * every chunk's byte offset aligned for a storage binding.
   */
  mlpChunkRows(rt: Runtime, rows: number, dtype: DType): number {
    const bytes = bytesPerElement(dtype);
    const budget = Math.min(MLP_CHUNK_BYTES, rt.limits.maxStorageBufferBindingSize);
    const fit = Math.floor(budget / (this.embedDim * bytes));
    if (fit >= rows) return rows;
    const align = rt.limits.minStorageBufferOffsetAlignment;
    const step = align / gcd(align, this.channels * bytes);
    return Math.max(step, fit - (fit % step));
  }

  tensors(): Tensor[] {
    return [
      ...this.modulation.tensors(),
      this.depthwiseWeight,
      this.depthwiseBias,
      this.channelwise0.weight,
      this.channelwise0.bias,
      this.channelwise2.weight,
      this.channelwise2.bias,
    ];
  }
}

/** diffusers' VectorQuantizer(n_e, vq_embed_dim, beta=0.25, legacy=False) forward, on NHWC rows. */
class VectorQuantizer {
  private constructor(readonly codebook: Tensor) {}

  static async load(scope: WeightScope, numEmbeddings: number, embedDim: number): Promise<VectorQuantizer> {
    return new VectorQuantizer(await scope.pp('embedding').tensor('weight', [numEmbeddings, embedDim]));
  }

  forward(rt: Runtime, z: Tensor): { quantized: Tensor; indices: Tensor; loss: Tensor } {
    return vectorQuantize(rt, z, this.codebook, { beta: VQ_BETA });
  }

  tensors(): Tensor[] {
    return [this.codebook];
  }
}

/** Runs `fn` in its own scope; `input` is freed afterwards unless it is the caller's tensor. */
async function stage(rt: Runtime, input: Tensor, callerOwned: Tensor, fn: () => Tensor): Promise<Tensor> {
  const out = await rt.scope(fn);
  if (input !== callerOwned) input.dispose();
  return out;
}

export class PaellaVQModel {
  private constructor(
    readonly rt: Runtime,
    readonly config: PaellaVQConfig,
    /** The dtype activations are stored in; inputs must be uploaded in it. */
    readonly dtype: DType,
    readonly inBlock: PointwiseConv2d,
    readonly downBlocks: readonly Module[],
    readonly vquantizer: VectorQuantizer,
    readonly upBlocks: readonly Module[],
    readonly outBlock: PointwiseConv2d,
  ) {}

  /** Latents are scaled by this before decoding in the pipelines. */
  get scaleFactor(): number {
    return this.config.scaleFactor;
  }

  /** Loads `<dir>/config.json` and `<dir>/diffusion_pytorch_model.safetensors` (the vqgan folder of a diffusers repo). */
  static fromPretrained(rt: Runtime, dir: string, options: PaellaVQModelOptions = {}): Promise<PaellaVQModel> {
    return loadPretrainedFolder(dir, 'diffusion_pytorch_model.safetensors', parsePaellaVQConfig, (reader, file, config) =>
      PaellaVQModel.load(
        new WeightLoader(rt, reader, file, options.dtype ?? 'f32', { onProgress: options.onProgress, dryRun: options.dryRun }),
        config,
      ),
    );
  }

  /**
   * Walks the checkpoint's keys in PaellaVQModel.__init__ order and fails unless every key was used.
   * A failure frees what was already uploaded. Call outside `rt.scope`, which would free the weights.
   */
  static load(loader: WeightLoader, config: PaellaVQConfig): Promise<PaellaVQModel> {
    return loader.build(() => PaellaVQModel.build(loader, config));
  }

  private static async build(loader: WeightLoader, config: PaellaVQConfig): Promise<PaellaVQModel> {
    const root = loader.root();
    const c = channelLevels(config);
    const levels = config.levels;
    const f2 = config.upDownScaleFactor ** 2;
    const latent = config.latentChannels;

    const inBlock = await PointwiseConv2d.load(root.pp('in_block').pp(1), config.inChannels * f2, c[0]);

    const down = root.pp('down_blocks');
    const downBlocks: Module[] = [];
    for (let i = 0; i < levels; i++) {
      if (i > 0) downBlocks.push(await Conv2d.load(down.pp(downBlocks.length), c[i - 1], c[i]));
      downBlocks.push(await MixingResidualBlock.load(down.pp(downBlocks.length), c[i], c[i] * 4));
    }
    const toLatent = down.pp(downBlocks.length);
    downBlocks.push(
      new Sequential([
        await PointwiseConv2d.load(toLatent.pp(0), c[levels - 1], latent, false),
        await BatchNorm2d.load(toLatent.pp(1), latent),
      ]),
    );

    const vquantizer = await VectorQuantizer.load(root.pp('vquantizer'), config.numVqEmbeddings, latent);

    const up = root.pp('up_blocks');
    const upBlocks: Module[] = [new Sequential([await PointwiseConv2d.load(up.pp(0).pp(0), latent, c[levels - 1])])];
    for (let i = 0; i < levels; i++) {
      const channels = c[levels - 1 - i];
      for (let j = 0; j < (i === 0 ? config.bottleneckBlocks : 1); j++) {
        upBlocks.push(await MixingResidualBlock.load(up.pp(upBlocks.length), channels, channels * 4));
      }
      if (i < levels - 1) upBlocks.push(await ConvTranspose2d.load(up.pp(upBlocks.length), channels, c[levels - 2 - i]));
    }
    const outBlock = await PointwiseConv2d.load(root.pp('out_block').pp(0), c[0], config.outChannels * f2);

    return new PaellaVQModel(loader.rt, config, loader.rt.storageDType(loader.dtype), inBlock, downBlocks, vquantizer, upBlocks, outBlock);
  }

  private checkInput(what: string, x: Tensor, channels: number): void {
    if (x.shape.length !== 4 || x.shape[1] !== channels) {
      throw new Error(`PaellaVQModel.${what}: expected [B, ${channels}, H, W], got [${x.shape.join(', ')}]`);
    }
    if (x.dtype !== this.dtype) {
      throw new Error(`PaellaVQModel.${what}: input is ${x.dtype} but the model runs in ${this.dtype}; upload it as ${this.dtype}`);
    }
  }

  /** image [B, in_channels, H, W] (H, W multiples of 4 for the default config) → latents [B, latent_channels, H/4, W/4]. */
  async encode(image: Tensor, { capture }: PaellaVQForwardOptions = {}): Promise<Tensor> {
    this.checkInput('encode', image, this.config.inChannels);
    const { rt } = this;
    const state: ForwardState = { rt, capture };
    let h = await stage(rt, image, image, () => {
      const unshuffled = record(state, 'in_block.0', pixelUnshuffle(rt, nchwToNhwc(rt, image), this.config.upDownScaleFactor));
      return this.inBlock.forward(state, unshuffled);
    });
    for (const block of this.downBlocks) h = await stage(rt, h, image, () => block.forward(state, h));
    return stage(rt, h, image, () => nhwcToNchw(rt, h));
  }

  /** `vquantizer(latents)`: the nearest code of every latent pixel. */
  async quantize(latents: Tensor): Promise<VQOutput> {
    this.checkInput('quantize', latents, this.config.latentChannels);
    const { rt } = this;
    return rt.scope(() => {
      const { quantized, indices, loss } = this.vquantizer.forward(rt, nchwToNhwc(rt, latents));
      return { quantized: nhwcToNchw(rt, quantized), indices, loss };
    });
  }

  /** latents [B, latent_channels, h, w] → image [B, out_channels, 4h, 4w] (default config), not clamped. */
  async decode(latents: Tensor, { forceNotQuantize = true, capture, bandBytes }: PaellaVQDecodeOptions = {}): Promise<Tensor> {
    this.checkInput('decode', latents, this.config.latentChannels);
    const { rt } = this;
    const state: ForwardState = { rt, capture };
    let h = await stage(rt, latents, latents, () => {
      const x = nchwToNhwc(rt, latents);
      return forceNotQuantize ? x : this.vquantizer.forward(rt, x).quantized;
    });
    const lastUp = this.lastUpSampler();
    for (const [i, block] of this.upBlocks.entries()) {
      if (i === lastUp && !capture) {
        const rows = this.lastLevelBandRows(h, bandBytes ?? rt.limits.maxStorageBufferBindingSize);
        if (rows !== null) return stage(rt, h, latents, () => nhwcToNchw(rt, this.decodeLastLevelInBands(state, h, lastUp, rows)));
      }
      h = await stage(rt, h, latents, () => block.forward(state, h));
    }
    return stage(rt, h, latents, () => {
      const projected = this.outBlock.forward(state, h);
      return nhwcToNchw(rt, record(state, 'out_block.1', pixelShuffle(rt, projected, this.config.upDownScaleFactor)));
    });
  }

  private lastUpSampler(): number {
    let last = -1;
    this.upBlocks.forEach((block, i) => {
      if (block instanceof ConvTranspose2d) last = i;
    });
    return last;
  }

  /**
   * Output rows per band for the last level, whose input is `x` [B, H, W, C], or null when its
   * maps fit `limit` bytes whole. A band's maps hold its rows plus up to 4 more (halos).
   */
  private lastLevelBandRows(x: Tensor, limit: number): number | null {
    const [batch, h, w] = x.shape;
    const channels = channelLevels(this.config)[0];
    const bytes = bytesPerElement(x.dtype);
    const rowBytes = batch * 2 * w * channels * bytes;
    const f = this.config.upDownScaleFactor;
    const copyable = rowsCopyable(w, x.shape[3], bytes) && rowsCopyable(2 * w, channels, bytes) && rowsCopyable(2 * w * f, this.config.outChannels, bytes);
    if (rowBytes * 2 * h <= limit || !copyable) return null;
    return Math.max(1, Math.floor(limit / rowBytes) - 4);
  }

  /**
   * The last level (the up-sampler `upBlocks[lastUp]`, the blocks after it, the output projection
   * and pixel shuffle) in bands of `rows` output rows, into an NHWC image. Each band computes one
   * more row above and below for the depthwise 3×3 convolution (replication padding applies only
   * at the image's edges), from the two input rows each up-sampled row needs (ConvTranspose2d k4
   * s2 p1: row oy reads input rows ⌊(oy − 1)/2⌋ .. ⌊(oy + 1)/2⌋). Every kept row sums the same
   * terms in the same order as the whole map would.
   */
  private decodeLastLevelInBands(state: ForwardState, x: Tensor, lastUp: number, rows: number): Tensor {
    const { rt } = this;
    const upSampler = this.upBlocks[lastUp];
    const blocks = this.upBlocks.slice(lastUp + 1);
    const f = this.config.upDownScaleFactor;
    const [batch, inH, inW] = x.shape;
    const [outH, outW] = [2 * inH, 2 * inW];
    const image = rt.empty([batch, outH * f, outW * f, this.config.outChannels], x.dtype, 'vqgan.image');
    for (let r0 = 0; r0 < outH; r0 += rows) {
      const r1 = Math.min(outH, r0 + rows);
      const [a, e] = [Math.max(0, r0 - 1), Math.min(outH, r1 + 1)];
      const [s0, s1] = [Math.max(0, Math.floor((a - 1) / 2)), Math.min(inH, Math.floor(e / 2) + 1)];
      const band: Tensor[] = [];
      const keep = (t: Tensor) => (band.push(t), t);
      const upsampled = keep(upSampler.forward(state, keep(sliceRows(rt, x, s0, s1 - s0))));
      let h = keep(sliceRows(rt, upsampled, a - 2 * s0, e - a));
      for (const block of blocks) h = keep(block.forward(state, h));
      const projected = keep(this.outBlock.forward(state, keep(sliceRows(rt, h, r0 - a, r1 - r0))));
      writeRows(rt, keep(pixelShuffle(rt, projected, f)), image, r0 * f);
      for (const t of band) t.dispose();
    }
    return image;
  }

  tensors(): Tensor[] {
    return [
      ...this.inBlock.tensors(),
      ...this.downBlocks.flatMap((b) => b.tensors()),
      ...this.vquantizer.tensors(),
      ...this.upBlocks.flatMap((b) => b.tensors()),
      ...this.outBlock.tensors(),
    ];
  }

  dispose(): void {
    for (const t of this.tensors()) t.dispose();
  }
}
