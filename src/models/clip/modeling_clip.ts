// Mirrors transformers src/transformers/models/clip/modeling_clip.py (v4.57, eager attention path):
// CLIPTextModel → CLIPTextTransformer → CLIPTextEmbeddings, CLIPEncoder of CLIPEncoderLayer
// (CLIPAttention, CLIPMLP), final_layer_norm; pooler_output picks the end-of-text token.
import { loadPretrainedFolder } from '../../nn/pretrained.js';
import type { Capture } from '../../nn/capture.js';
import { WeightLoader, type LoadProgressCallback, type WeightScope } from '../../nn/weight_scope.js';
import { activation } from '../../ops/activation.js';
import { attention } from '../../ops/attention.js';
import { attentionProbs } from '../../ops/attention_scores.js';
import { add } from '../../ops/elementwise.js';
import { layerNorm } from '../../ops/layer_norm.js';
import { linear } from '../../ops/matmul.js';
import type { Runtime } from '../../runtime/device.js';
import { bytesPerElement, f16BitsToF32Array, type DType } from '../../runtime/dtype.js';
import type { Tensor } from '../../runtime/tensor.js';
import { parseCLIPTextConfig, type CLIPTextConfig } from './configuration_clip.js';

export interface CLIPTextModelOptions {
  /** Device dtype of the weights and activations (f16: f16 storage, f32 arithmetic). Default f32. */
  dtype?: DType;
  /** Called after each tensor is loaded (see WeightLoaderOptions). */
  onProgress?: LoadProgressCallback;
  /** Check keys and shapes only (see WeightLoader). */
  dryRun?: boolean;
}

export interface CLIPForwardOptions {
  /** Also return the embeddings and every encoder layer's output (transformers' `hidden_states`). */
  outputHiddenStates?: boolean;
  /** Also return every layer's attention probabilities [B, heads, L, L] (f32), computed by a separate explicit path. */
  outputAttentions?: boolean;
  /** Records module outputs under the golden names `act.text_model.<module path>.out`. */
  capture?: Capture;
}

export interface CLIPTextModelOutput {
  /** [B, L, hidden], after final_layer_norm. */
  lastHiddenState: Tensor;
  /** [B, hidden]: the end-of-text token's row of lastHiddenState. */
  poolerOutput: Tensor;
  /** numHiddenLayers + 1 tensors [B, L, hidden]: the embeddings, then each layer's output (the last before final_layer_norm). */
  hiddenStates?: Tensor[];
  /** numHiddenLayers tensors [B, heads, L, L] f32. */
  attentions?: Tensor[];
}

/** Per-call state threaded through the modules. */
interface ForwardState {
  rt: Runtime;
  /** [B, L] f32 copy of the 2-D attention_mask; absent when the caller gave none. */
  keyPaddingMask?: Tensor;
  outputAttentions: boolean;
  capture?: Capture;
}

const shapeText = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** `record(name, t)` stores t as the output of module `<path>.<name>` when capturing; returns t either way. */
function recorderFor(capture: Capture | undefined, path: string): (name: string, t: Tensor) => Tensor {
  return (name, t) => {
    capture?.record(`${path}.${name}`, t);
    return t;
  };
}

class Linear {
  private constructor(
    readonly weight: Tensor,
    readonly bias: Tensor,
  ) {}

  static async load(scope: WeightScope, inFeatures: number, outFeatures: number): Promise<Linear> {
    return new Linear(await scope.tensor('weight', [outFeatures, inFeatures]), await scope.tensor('bias', [outFeatures]));
  }

  forward(rt: Runtime, x: Tensor): Tensor {
    return linear(rt, x, this.weight, this.bias);
  }

  tensors(): Tensor[] {
    return [this.weight, this.bias];
  }
}

class LayerNorm {
  private constructor(
    readonly weight: Tensor,
    readonly bias: Tensor,
    readonly eps: number,
  ) {}

  static async load(scope: WeightScope, features: number, eps: number): Promise<LayerNorm> {
    return new LayerNorm(await scope.tensor('weight', [features]), await scope.tensor('bias', [features]), eps);
  }

  forward(rt: Runtime, x: Tensor): Tensor {
    return layerNorm(rt, x, { weight: this.weight, bias: this.bias, eps: this.eps });
  }

  tensors(): Tensor[] {
    return [this.weight, this.bias];
  }
}

/**
 * An nn.Embedding whose table stays on the host. The token table (49408 rows: 253 MB in f32 for
 * ViT-bigG) is larger than a storage binding may be (128 MiB by default), and a lookup of 77 rows
 * per prompt is cheaper to gather on the host than to split the table across bindings on the GPU.
 * The table keeps the precision the model runs in: f32 values, or f16 bit patterns for f16.
 */
class HostEmbedding {
  private constructor(
    readonly table: Float32Array | Uint16Array,
    readonly dim: number,
  ) {}

  static async load(scope: WeightScope, rows: number, dim: number, dtype: DType): Promise<HostEmbedding> {
    const shape = [rows, dim];
    if (dtype === 'f32') return new HostEmbedding(await scope.host('weight', shape), dim);
    const { loader } = scope;
    loader.shapeOf(scope.key('weight'), shape);
    // Dry runs check the key and shape only; the stand-in table is never looked up.
    const bits = loader.options.dryRun ? new Uint16Array(1) : await loader.reader.readF16Bits(scope.key('weight'));
    return new HostEmbedding(bits, dim);
  }

  /** Rows `ids` as f32 values [ids.length, dim] (f16 tables widen exactly). */
  lookup(ids: readonly number[]): Float32Array {
    const out = new Float32Array(ids.length * this.dim);
    ids.forEach((id, i) => {
      const row = this.table.subarray(id * this.dim, (id + 1) * this.dim);
      out.set(row instanceof Uint16Array ? f16BitsToF32Array(row) : row, i * this.dim);
    });
    return out;
  }
}

/**
 * Both embedding lookups and their sum run on the host (see HostEmbedding); the sum is rounded once
 * to f32 (torch's f32 add), and to f16 on upload in f16 mode (torch's f16 add). position_ids is the
 * non-persistent buffer arange(max_position_embeddings): positions 0..L-1.
 */
class CLIPTextEmbeddings {
  private constructor(
    readonly tokenEmbedding: HostEmbedding,
    readonly positionEmbedding: HostEmbedding,
  ) {}

  static async load(scope: WeightScope, config: CLIPTextConfig, dtype: DType): Promise<CLIPTextEmbeddings> {
    // Checkpoints saved before transformers 4.31 still hold position_ids (then a persistent buffer),
    // which transformers ignores when loading.
    if (scope.has('position_ids')) scope.skip('position_ids', [1, config.maxPositionEmbeddings]);
    return new CLIPTextEmbeddings(
      await HostEmbedding.load(scope.pp('token_embedding'), config.vocabSize, config.hiddenSize, dtype),
      await HostEmbedding.load(scope.pp('position_embedding'), config.maxPositionEmbeddings, config.hiddenSize, dtype),
    );
  }

  forward(state: ForwardState, inputIds: readonly number[][], dtype: DType): Tensor {
    const { rt, capture } = state;
    const [batch, length, dim] = [inputIds.length, inputIds[0].length, this.tokenEmbedding.dim];
    const inputsEmbeds = this.tokenEmbedding.lookup(inputIds.flat());
    const positionEmbeddings = this.positionEmbedding.lookup(Array.from({ length }, (_, i) => i));
    const embeddings = new Float32Array(inputsEmbeds.length);
    for (let i = 0; i < embeddings.length; i++) embeddings[i] = inputsEmbeds[i] + positionEmbeddings[i % (length * dim)];
    if (capture) {
      // The capture keeps its own copy of what it records.
      const tokens = rt.upload(inputsEmbeds, [batch, length, dim], dtype, 'token_embedding');
      const positions = rt.upload(positionEmbeddings, [1, length, dim], dtype, 'position_embedding');
      capture.record('text_model.embeddings.token_embedding', tokens);
      capture.record('text_model.embeddings.position_embedding', positions);
      tokens.dispose();
      positions.dispose();
    }
    const out = rt.upload(embeddings, [batch, length, dim], dtype, 'embeddings');
    capture?.record('text_model.embeddings', out);
    return out;
  }
}

class CLIPAttention {
  private constructor(
    readonly path: string,
    readonly numHeads: number,
    readonly qProj: Linear,
    readonly kProj: Linear,
    readonly vProj: Linear,
    readonly outProj: Linear,
  ) {}

  static async load(scope: WeightScope, config: CLIPTextConfig): Promise<CLIPAttention> {
    const c = config.hiddenSize;
    return new CLIPAttention(
      scope.prefix,
      config.numAttentionHeads,
      await Linear.load(scope.pp('q_proj'), c, c),
      await Linear.load(scope.pp('k_proj'), c, c),
      await Linear.load(scope.pp('v_proj'), c, c),
      await Linear.load(scope.pp('out_proj'), c, c),
    );
  }

  /**
   * Returns `residual + out_proj(attention)`: CLIPEncoderLayer's residual add is fused into the
   * out_proj GEMM, except under a capture, which needs out_proj's own output.
   */
  forward(state: ForwardState, hiddenStates: Tensor, residual: Tensor): { out: Tensor; probs?: Tensor } {
    const { rt, capture } = state;
    const record = recorderFor(capture, this.path);
    const queries = record('q_proj', this.qProj.forward(rt, hiddenStates));
    const keys = record('k_proj', this.kProj.forward(rt, hiddenStates));
    const values = record('v_proj', this.vProj.forward(rt, hiddenStates));
    // transformers' causal mask plus the padding mask, each finfo.min where it applies (−inf where both).
    const maskOptions = { heads: this.numHeads, causal: true, keyPaddingMask: state.keyPaddingMask };
    const attnOutput = attention(rt, queries, keys, values, maskOptions);
    const probs = state.outputAttentions ? attentionProbs(rt, queries, keys, maskOptions) : undefined;
    const { weight, bias } = this.outProj;
    const out = capture
      ? add(rt, residual, record('out_proj', this.outProj.forward(rt, attnOutput)))
      : linear(rt, attnOutput, weight, bias, { residual });
    return { out, probs };
  }

  tensors(): Tensor[] {
    return [this.qProj, this.kProj, this.vProj, this.outProj].flatMap((l) => l.tensors());
  }
}

class CLIPMLP {
  private constructor(
    readonly path: string,
    readonly activationFn: CLIPTextConfig['hiddenAct'],
    readonly fc1: Linear,
    readonly fc2: Linear,
  ) {}

  static async load(scope: WeightScope, config: CLIPTextConfig): Promise<CLIPMLP> {
    return new CLIPMLP(
      scope.prefix,
      config.hiddenAct,
      await Linear.load(scope.pp('fc1'), config.hiddenSize, config.intermediateSize),
      await Linear.load(scope.pp('fc2'), config.intermediateSize, config.hiddenSize),
    );
  }

  /**
   * Returns `residual + fc2(act(fc1(x)))`, with the activation fused into fc1's GEMM and the residual
   * into fc2's, except under a capture, which needs fc1's, the activation's and fc2's own outputs.
   */
  forward(state: ForwardState, hiddenStates: Tensor, residual: Tensor): Tensor {
    const { rt, capture } = state;
    if (!capture) {
      const h = linear(rt, hiddenStates, this.fc1.weight, this.fc1.bias, { act: this.activationFn });
      return linear(rt, h, this.fc2.weight, this.fc2.bias, { residual });
    }
    const record = recorderFor(capture, this.path);
    let h = record('fc1', this.fc1.forward(rt, hiddenStates));
    h = record('activation_fn', activation(rt, h, this.activationFn));
    return add(rt, residual, record('fc2', this.fc2.forward(rt, h)));
  }

  tensors(): Tensor[] {
    return [...this.fc1.tensors(), ...this.fc2.tensors()];
  }
}

class CLIPEncoderLayer {
  private constructor(
    readonly path: string,
    readonly selfAttn: CLIPAttention,
    readonly layerNorm1: LayerNorm,
    readonly mlp: CLIPMLP,
    readonly layerNorm2: LayerNorm,
  ) {}

  static async load(scope: WeightScope, config: CLIPTextConfig): Promise<CLIPEncoderLayer> {
    const { hiddenSize: c, layerNormEps: eps } = config;
    return new CLIPEncoderLayer(
      scope.prefix,
      await CLIPAttention.load(scope.pp('self_attn'), config),
      await LayerNorm.load(scope.pp('layer_norm1'), c, eps),
      await CLIPMLP.load(scope.pp('mlp'), config),
      await LayerNorm.load(scope.pp('layer_norm2'), c, eps),
    );
  }

  forward(state: ForwardState, hiddenStates: Tensor): { out: Tensor; probs?: Tensor } {
    const { rt } = state;
    const record = recorderFor(state.capture, this.path);
    let residual = hiddenStates;
    let h = record('layer_norm1', this.layerNorm1.forward(rt, hiddenStates));
    const attn = this.selfAttn.forward(state, h, residual);
    residual = attn.out;
    h = record('layer_norm2', this.layerNorm2.forward(rt, residual));
    return { out: this.mlp.forward(state, h, residual), probs: attn.probs };
  }

  tensors(): Tensor[] {
    return [...this.selfAttn.tensors(), ...this.layerNorm1.tensors(), ...this.mlp.tensors(), ...this.layerNorm2.tensors()];
  }
}

class CLIPEncoder {
  private constructor(readonly layers: CLIPEncoderLayer[]) {}

  static async load(scope: WeightScope, config: CLIPTextConfig): Promise<CLIPEncoder> {
    const layers: CLIPEncoderLayer[] = [];
    for (let i = 0; i < config.numHiddenLayers; i++) layers.push(await CLIPEncoderLayer.load(scope.pp('layers').pp(i), config));
    return new CLIPEncoder(layers);
  }

  /** Each layer runs in its own scope; a layer's input is freed once used unless it is returned in hiddenStates. */
  async forward(
    state: ForwardState,
    inputsEmbeds: Tensor,
    outputHiddenStates: boolean,
  ): Promise<{ lastHiddenState: Tensor; hiddenStates?: Tensor[]; attentions?: Tensor[] }> {
    const hiddenStates: Tensor[] = [];
    const attentions: Tensor[] = [];
    let h = inputsEmbeds;
    for (const layer of this.layers) {
      if (outputHiddenStates) hiddenStates.push(h);
      const { out, probs } = await state.rt.scope(() => layer.forward(state, h));
      if (!outputHiddenStates) h.dispose();
      if (probs) attentions.push(probs);
      h = out;
    }
    if (outputHiddenStates) hiddenStates.push(h);
    return {
      lastHiddenState: h,
      hiddenStates: outputHiddenStates ? hiddenStates : undefined,
      attentions: state.outputAttentions ? attentions : undefined,
    };
  }

  tensors(): Tensor[] {
    return this.layers.flatMap((l) => l.tensors());
  }
}

/**
 * Row of each sequence whose state becomes pooler_output, as transformers 4.57 picks it: configs
 * from before PR #24773 say eos_token_id 2, and then the end-of-text token is the largest id
 * (argmax, first occurrence); otherwise the first position of eos_token_id (0 when there is none).
 */
export function poolerIndices(inputIds: readonly number[][], eosTokenId: number): number[] {
  return inputIds.map((ids) => {
    if (eosTokenId === 2) return ids.reduce((best, id, i) => (id > ids[best] ? i : best), 0);
    return Math.max(0, ids.indexOf(eosTokenId));
  });
}

class CLIPTextTransformer {
  private constructor(
    readonly config: CLIPTextConfig,
    readonly dtype: DType,
    readonly embeddings: CLIPTextEmbeddings,
    readonly encoder: CLIPEncoder,
    readonly finalLayerNorm: LayerNorm,
  ) {}

  static async load(scope: WeightScope, config: CLIPTextConfig, dtype: DType): Promise<CLIPTextTransformer> {
    return new CLIPTextTransformer(
      config,
      dtype,
      await CLIPTextEmbeddings.load(scope.pp('embeddings'), config, dtype),
      await CLIPEncoder.load(scope.pp('encoder'), config),
      await LayerNorm.load(scope.pp('final_layer_norm'), config.hiddenSize, config.layerNormEps),
    );
  }

  async forward(
    rt: Runtime,
    inputIds: readonly number[][],
    attentionMask: readonly number[][] | undefined,
    options: CLIPForwardOptions,
  ): Promise<CLIPTextModelOutput> {
    this.checkInputs(inputIds, attentionMask);
    const [batch, length] = [inputIds.length, inputIds[0].length];
    const keyPaddingMask = attentionMask && rt.upload(attentionMask.flat(), [batch, length], 'f32', 'attention_mask');
    const state: ForwardState = {
      rt,
      keyPaddingMask,
      outputAttentions: options.outputAttentions ?? false,
      capture: options.capture,
    };
    const hiddenStates = this.embeddings.forward(state, inputIds, this.dtype);
    const encoderOutputs = await this.encoder.forward(state, hiddenStates, options.outputHiddenStates ?? false);
    keyPaddingMask?.dispose();

    const lastHiddenState = this.finalLayerNorm.forward(rt, encoderOutputs.lastHiddenState);
    state.capture?.record('text_model.final_layer_norm', lastHiddenState);
    if (!encoderOutputs.hiddenStates) encoderOutputs.lastHiddenState.dispose();

    const poolerOutput = selectRows(rt, lastHiddenState, poolerIndices(inputIds, this.config.eosTokenId));
    return {
      lastHiddenState,
      poolerOutput,
      hiddenStates: encoderOutputs.hiddenStates,
      attentions: encoderOutputs.attentions,
    };
  }

  private checkInputs(inputIds: readonly number[][], attentionMask: readonly number[][] | undefined): void {
    const { vocabSize, maxPositionEmbeddings } = this.config;
    const length = inputIds[0]?.length ?? 0;
    if (length === 0) throw new Error('CLIPTextModel: input_ids must hold at least one sequence of at least one token');
    if (length > maxPositionEmbeddings) {
      throw new Error(`CLIPTextModel: sequence length ${length} is more than max_position_embeddings ${maxPositionEmbeddings}`);
    }
    inputIds.forEach((ids, b) => {
      if (ids.length !== length) throw new Error(`CLIPTextModel: input_ids[${b}] has ${ids.length} tokens, input_ids[0] has ${length}`);
      const bad = ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
      if (bad >= 0) throw new Error(`CLIPTextModel: input_ids[${b}][${bad}] = ${ids[bad]} is not a token id (vocab_size ${vocabSize})`);
    });
    if (attentionMask) {
      const shape = [attentionMask.length, ...new Set(attentionMask.map((m) => m.length))];
      if (shape.length !== 2 || shape[0] !== inputIds.length || shape[1] !== length) {
        throw new Error(
          `CLIPTextModel: attention_mask must be ${shapeText([inputIds.length, length])} like input_ids, got rows of lengths ${shapeText(attentionMask.map((m) => m.length))}`,
        );
      }
    }
  }

  tensors(): Tensor[] {
    return [...this.encoder.tensors(), ...this.finalLayerNorm.tensors()];
  }
}

/** Rows `rows[b]` of each sequence of x [B, L, C] → [B, C], as buffer copies (no kernel needed). */
function selectRows(rt: Runtime, x: Tensor, rows: readonly number[]): Tensor {
  const [batch, length, channels] = x.shape;
  const rowBytes = channels * bytesPerElement(x.dtype);
  if (rowBytes % 4 !== 0) throw new Error(`selectRows: rows of ${rowBytes} bytes cannot be copied (need a multiple of 4)`);
  const out = rt.empty([batch, channels], x.dtype, 'pooler_output');
  rows.forEach((row, b) => {
    rt.recorder.copy(x.buffer, x.byteOffset + (b * length + row) * rowBytes, out.buffer, out.byteOffset + b * rowBytes, rowBytes);
  });
  return out;
}

export class CLIPTextModel {
  private constructor(
    readonly rt: Runtime,
    readonly textModel: CLIPTextTransformer,
  ) {}

  get config(): CLIPTextConfig {
    return this.textModel.config;
  }

  get dtype(): DType {
    return this.textModel.dtype;
  }

  /** Loads `<dir>/config.json` and `<dir>/model.safetensors` (the text_encoder folder of a diffusers repo). */
  static fromPretrained(rt: Runtime, dir: string, options: CLIPTextModelOptions = {}): Promise<CLIPTextModel> {
    return loadPretrainedFolder(dir, 'model.safetensors', parseCLIPTextConfig, (reader, file, config) =>
      CLIPTextModel.load(
        new WeightLoader(rt, reader, file, options.dtype ?? 'f32', { onProgress: options.onProgress, dryRun: options.dryRun }),
        config,
      ),
    );
  }

  /**
   * Walks the checkpoint's keys through `loader` (a dry-run loader checks keys and shapes only) and
   * fails unless every key was used. Call outside `rt.scope`, which would free the weights.
   */
  static load(loader: WeightLoader, config: CLIPTextConfig): Promise<CLIPTextModel> {
    return loader.build(
      async () => new CLIPTextModel(loader.rt, await CLIPTextTransformer.load(loader.root().pp('text_model'), config, loader.dtype)),
    );
  }

  /**
   * `inputIds` and `attentionMask` are [B][L] (L ≤ max_position_embeddings; the mask is 1 for tokens,
   * 0 for padding). Returned tensors belong to the caller's scope.
   */
  forward(
    inputIds: readonly number[][],
    attentionMask?: readonly number[][],
    options: CLIPForwardOptions = {},
  ): Promise<CLIPTextModelOutput> {
    return this.textModel.forward(this.rt, inputIds, attentionMask, options);
  }

  dispose(): void {
    for (const t of this.textModel.tensors()) t.dispose();
  }
}
