// Mirrors diffusers v0.21.0 src/diffusers/pipelines/wuerstchen/modeling_wuerstchen_common.py
// (WuerstchenLayerNorm, TimestepBlock, ResBlock, GlobalResponseNorm, AttnBlock), shared by the
// prior (Stage C) and the decoder (Stage B). Activations are NHWC [B, H, W, C]; each module's
// `path` is its PyTorch module path (its weight prefix), under which `--capture` records outputs.
import type { Capture } from '../../nn/capture.js';
import type { WeightScope } from '../../nn/weight_scope.js';
import { activation } from '../../ops/activation.js';
import { attention } from '../../ops/attention.js';
import { conv2d, conv2dWeightToTapMajor } from '../../ops/conv2d.js';
import { add, concatChannels } from '../../ops/elementwise.js';
import { globalResponseNorm } from '../../ops/grn.js';
import { layerNorm } from '../../ops/layer_norm.js';
import { linear, type FusedActivation, type LinearOptions } from '../../ops/matmul.js';
import { timestepModulate } from '../../ops/timestep_modulate.js';
import type { Runtime } from '../../runtime/device.js';
import type { Tensor } from '../../runtime/tensor.js';

/** nn.Linear's parameters: weight [out, in], bias [out]. */
export class Linear {
  constructor(
    readonly weight: Tensor,
    readonly bias: Tensor,
  ) {}

  static async load(scope: WeightScope, inFeatures: number, outFeatures: number): Promise<Linear> {
    return new Linear(await scope.tensor('weight', [outFeatures, inFeatures]), await scope.tensor('bias', [outFeatures]));
  }

  /** An nn.Conv2d with a 1×1 kernel over NHWC is a Linear on the channels: its weight is [out, in, 1, 1]. */
  static async loadConv1x1(scope: WeightScope, inChannels: number, outChannels: number): Promise<Linear> {
    const weight = await scope.tensor('weight', [outChannels, inChannels, 1, 1]);
    return new Linear(weight.reshape([outChannels, inChannels]), await scope.tensor('bias', [outChannels]));
  }

  forward(rt: Runtime, x: Tensor, opts: LinearOptions = {}): Tensor {
    return linear(rt, x, this.weight, this.bias, opts);
  }

  parameters(): Tensor[] {
    return [this.weight.base ?? this.weight, this.bias];
  }
}

/**
 * `Linear` then an activation (e.g. channelwise.0 → channelwise.1). Fused into the GEMM epilogue,
 * except while capturing: then the Linear's output is recorded under `linearPath` and the
 * activation runs on its own, recorded under `actPath`.
 */
export function linearAct(
  rt: Runtime,
  x: Tensor,
  layer: Linear,
  act: FusedActivation,
  capture: Capture | undefined,
  linearPath: string,
  actPath: string,
): Tensor {
  if (!capture) return layer.forward(rt, x, { act });
  const pre = layer.forward(rt, x);
  capture.record(linearPath, pre);
  const out = activation(rt, pre, act);
  capture.record(actPath, out);
  return out;
}

/**
 * `Linear` whose output is added to `residual`: fused into the GEMM, except while capturing, when the
 * Linear's own output is recorded under `linearPath` first.
 */
export function linearResidual(
  rt: Runtime,
  x: Tensor,
  layer: Linear,
  residual: Tensor,
  capture: Capture | undefined,
  linearPath: string,
): Tensor {
  if (!capture) return layer.forward(rt, x, { residual });
  const y = layer.forward(rt, x);
  capture.record(linearPath, y);
  return add(rt, y, residual);
}

/** LayerNorm over channels without affine parameters (eps 1e-6 in every Würstchen use). */
export class WuerstchenLayerNorm {
  constructor(readonly eps = 1e-6) {}

  forward(rt: Runtime, x: Tensor): Tensor {
    return layerNorm(rt, x, { eps: this.eps });
  }
}

/** ConvNeXt-V2's GRN over NHWC: gamma and beta are stored [1, 1, 1, C]. */
export class GlobalResponseNorm {
  constructor(
    readonly gamma: Tensor,
    readonly beta: Tensor,
  ) {}

  static async load(scope: WeightScope, dim: number): Promise<GlobalResponseNorm> {
    return new GlobalResponseNorm(await scope.tensor('gamma', [1, 1, 1, dim]), await scope.tensor('beta', [1, 1, 1, dim]));
  }

  forward(rt: Runtime, x: Tensor): Tensor {
    return globalResponseNorm(rt, x, this.gamma, this.beta);
  }

  parameters(): Tensor[] {
    return [this.gamma, this.beta];
  }
}

/** `x · (1 + a) + b` with a, b = mapper(t).chunk(2): the timestep conditioning. */
export class TimestepBlock {
  constructor(
    readonly path: string,
    readonly mapper: Linear,
  ) {}

  static async load(scope: WeightScope, c: number, cTimestep: number): Promise<TimestepBlock> {
    return new TimestepBlock(scope.prefix, await Linear.load(scope.pp('mapper'), cTimestep, c * 2));
  }

  forward(rt: Runtime, x: Tensor, t: Tensor, capture?: Capture): Tensor {
    const ab = this.mapper.forward(rt, t);
    capture?.record(`${this.path}.mapper`, ab);
    const out = timestepModulate(rt, x, ab);
    capture?.record(this.path, out, 'nhwc');
    return out;
  }

  parameters(): Tensor[] {
    return this.mapper.parameters();
  }
}

/**
 * What ResBlock and ResBlockStageB share: their parameters (depthwise, channelwise.0, .2, .4) and
 * their forward but for where ResBlockStageB joins x_skip, between the norm and channelwise.
 */
export abstract class ResBlockBase {
  readonly norm = new WuerstchenLayerNorm(1e-6);

  constructor(
    readonly path: string,
    readonly kernelSize: number,
    /** Tap-major [k, k, C, 1] (see conv2d.ts). */
    readonly depthwiseWeight: Tensor,
    readonly depthwiseBias: Tensor,
    readonly channelwise0: Linear,
    readonly channelwise2: GlobalResponseNorm,
    readonly channelwise4: Linear,
  ) {}

  /** The constructor's arguments for `c` channels, channelwise.0 taking `channelwiseIn` of them. */
  protected static async loadArgs(
    scope: WeightScope,
    c: number,
    channelwiseIn: number,
    kernelSize: number,
  ): Promise<ConstructorParameters<typeof ResBlockBase>> {
    const depthwise = scope.pp('depthwise');
    const channelwise = scope.pp('channelwise');
    return [
      scope.prefix,
      kernelSize,
      await loadTapMajorConvWeight(depthwise, [c, 1, kernelSize, kernelSize]),
      await depthwise.tensor('bias', [c]),
      await Linear.load(channelwise.pp(0), channelwiseIn, c * 4),
      await GlobalResponseNorm.load(channelwise.pp(2), c * 4),
      await Linear.load(channelwise.pp(4), c * 4, c),
    ];
  }

  /** `norm(depthwise(x))`. */
  protected depthwiseNorm(rt: Runtime, x: Tensor, capture: Capture | undefined): Tensor {
    const p = this.path;
    const depthwise = conv2d(rt, x, this.depthwiseWeight, this.depthwiseBias, {
      padding: Math.floor(this.kernelSize / 2),
      groups: x.shape[3],
    });
    capture?.record(`${p}.depthwise`, depthwise, 'nhwc');
    const normed = this.norm.forward(rt, depthwise);
    capture?.record(`${p}.norm`, normed, 'nhwc');
    return normed;
  }

  /** `channelwise(h) + x`: x is the block's input, added in the last Linear's epilogue. */
  protected channelwiseResidual(rt: Runtime, h: Tensor, x: Tensor, capture: Capture | undefined): Tensor {
    const p = this.path;
    const hidden = linearAct(rt, h, this.channelwise0, 'gelu', capture, `${p}.channelwise.0`, `${p}.channelwise.1`);
    const grn = this.channelwise2.forward(rt, hidden);
    capture?.record(`${p}.channelwise.2`, grn);
    const out = linearResidual(rt, grn, this.channelwise4, x, capture, `${p}.channelwise.4`);
    capture?.record(p, out, 'nhwc');
    return out;
  }

  parameters(): Tensor[] {
    return [
      this.depthwiseWeight,
      this.depthwiseBias,
      ...this.channelwise0.parameters(),
      ...this.channelwise2.parameters(),
      ...this.channelwise4.parameters(),
    ];
  }
}

/**
 * ConvNeXt-style block: depthwise conv → LayerNorm → Linear(c, 4c) → GELU → GRN → (Dropout) →
 * Linear(4c, c), plus the input. The released models never pass `x_skip` (c_skip = 0), so it is
 * not ported.
 */
export class ResBlock extends ResBlockBase {
  static async load(scope: WeightScope, c: number, kernelSize = 3): Promise<ResBlock> {
    return new ResBlock(...(await ResBlockBase.loadArgs(scope, c, c, kernelSize)));
  }

  forward(rt: Runtime, x: Tensor, capture?: Capture): Tensor {
    return this.channelwiseResidual(rt, this.depthwiseNorm(rt, x, capture), x, capture);
  }
}

/** diffusers `Attention(query_dim=c, heads, dim_head=c // heads, bias=True)` with its default processor. */
export class Attention {
  constructor(
    readonly path: string,
    readonly heads: number,
    readonly toQ: Linear,
    readonly toK: Linear,
    readonly toV: Linear,
    readonly toOut: Linear,
  ) {}

  static async load(scope: WeightScope, queryDim: number, crossAttentionDim: number, heads: number, dimHead: number): Promise<Attention> {
    const inner = heads * dimHead;
    return new Attention(
      scope.prefix,
      heads,
      await Linear.load(scope.pp('to_q'), queryDim, inner),
      await Linear.load(scope.pp('to_k'), crossAttentionDim, inner),
      await Linear.load(scope.pp('to_v'), crossAttentionDim, inner),
      await Linear.load(scope.pp('to_out').pp(0), inner, queryDim),
    );
  }

  /**
   * `hidden` [B, Lq, C] or NHWC [B, H, W, C] (whose rows are the tokens: PyTorch's
   * `view(B, C, -1).transpose(1, 2)`) attends to `encoder` [B, Lk, C']; the result has `hidden`'s
   * shape. `residual` (that shape too) is added in to_out's epilogue, as AttnBlock does right after
   * the call; while capturing, the module's own output is recorded first.
   */
  forward(rt: Runtime, hidden: Tensor, encoder: Tensor, { residual, capture }: { residual?: Tensor; capture?: Capture } = {}): Tensor {
    const p = this.path;
    const shape = hidden.shape;
    const channels = shape[shape.length - 1];
    const tokens = hidden.reshape([shape[0], -1, channels]);
    const q = this.toQ.forward(rt, tokens);
    capture?.record(`${p}.to_q`, q);
    const k = this.toK.forward(rt, encoder);
    capture?.record(`${p}.to_k`, k);
    const v = this.toV.forward(rt, encoder);
    capture?.record(`${p}.to_v`, v);
    const attended = attention(rt, q, k, v, { heads: this.heads });
    // to_out writes through a token view of an owning tensor of `hidden`'s shape, so callers get no view back.
    const out = rt.empty(shape, hidden.dtype, 'attention');
    const outTokens = out.reshape(tokens.shape);
    this.toOut.forward(rt, attended, { out: outTokens, residual: capture ? undefined : residual?.reshape(tokens.shape) });
    if (!capture) return out;
    capture.record(`${p}.to_out.0`, outTokens);
    capture.record(p, out, shape.length === 4 ? 'nhwc' : 'same');
    return residual ? add(rt, out, residual) : out;
  }

  parameters(): Tensor[] {
    return [...this.toQ.parameters(), ...this.toK.parameters(), ...this.toV.parameters(), ...this.toOut.parameters()];
  }
}

/**
 * x + Attention(norm(x), kv_mapper(kv)), where with `selfAttn` the keys and values are the normed
 * x tokens followed by the mapped conditioning tokens.
 */
export class AttnBlock {
  readonly norm = new WuerstchenLayerNorm(1e-6);

  constructor(
    readonly path: string,
    readonly selfAttn: boolean,
    readonly attention: Attention,
    /** kv_mapper = Sequential(SiLU, Linear): the Linear is kv_mapper.1. */
    readonly kvMapper1: Linear,
  ) {}

  static async load(scope: WeightScope, c: number, cCond: number, nhead: number, selfAttn = true): Promise<AttnBlock> {
    const dimHead = Math.floor(c / nhead);
    return new AttnBlock(
      scope.prefix,
      selfAttn,
      await Attention.load(scope.pp('attention'), c, c, nhead, dimHead),
      await Linear.load(scope.pp('kv_mapper').pp(1), cCond, c),
    );
  }

  /** `x` NHWC [B, H, W, C]; `kv` [B, L, c_cond]. */
  forward(rt: Runtime, x: Tensor, kv: Tensor, capture?: Capture): Tensor {
    const p = this.path;
    const [b, h, w, c] = x.shape;
    const silu = activation(rt, kv, 'silu');
    capture?.record(`${p}.kv_mapper.0`, silu);
    const mapped = this.kvMapper1.forward(rt, silu);
    capture?.record(`${p}.kv_mapper.1`, mapped);
    const normX = this.norm.forward(rt, x);
    capture?.record(`${p}.norm`, normX, 'nhwc');
    const tokens = normX.reshape([b, h * w, c]);
    const keysValues = this.selfAttn ? concatTokens(rt, tokens, mapped) : mapped;
    const out = this.attention.forward(rt, normX, keysValues, { residual: x, capture });
    capture?.record(p, out, 'nhwc');
    return out;
  }

  parameters(): Tensor[] {
    return [...this.attention.parameters(), ...this.kvMapper1.parameters()];
  }
}

/** torch.cat([a, b], dim=1) of token sequences [B, La, C] and [B, Lb, C]: a channel concat of whole rows. */
function concatTokens(rt: Runtime, a: Tensor, b: Tensor): Tensor {
  const [batch, la, c] = a.shape;
  const lb = b.shape[1];
  if (b.shape[0] !== batch || b.shape[2] !== c) {
    throw new Error(`concatTokens: cannot concatenate [${a.shape.join(', ')}] and [${b.shape.join(', ')}] along tokens`);
  }
  return concatChannels(rt, [a.reshape([batch, la * c]), b.reshape([batch, lb * c])]).reshape([batch, la + lb, c]);
}

/**
 * A conv weight [Cout, Cin/groups, k, k] reordered once to the tap-major layout conv2d reads. A dry
 * run hands back a one-value stand-in with nothing to reorder.
 */
export async function loadTapMajorConvWeight(scope: WeightScope, shape: readonly [number, number, number, number]): Promise<Tensor> {
  const [cout, cin, kh, kw] = shape;
  const host = await scope.host('weight', shape);
  const data = scope.loader.options.dryRun ? host : conv2dWeightToTapMajor(host, shape);
  return scope.upload(data, [kh, kw, cout, cin], 'weight');
}
