/**
 * `wuerstchen forward text_encoder`: a CLIPTextModel folder run on `in.input_ids` and
 * `in.attention_mask`, with hidden states and attentions, as the golden io/text_encoder_prior and
 * io/text_encoder_decoder files were made (same tensor names in both).
 */
import { requireInput, type ForwardComponent, type NamedTensor } from '../../nn/forward_component.js';
import type { Tensor } from '../../runtime/tensor.js';
import { CLIPTextModel } from './modeling_clip.js';

/** A [B, L] integer tensor as rows of numbers. */
function rowsOf(t: NamedTensor, name: string): number[][] {
  if (t.shape.length !== 2) throw new Error(`input tensor '${name}' must be [batch, tokens], got [${t.shape.join(', ')}]`);
  const [batch, length] = t.shape;
  return Array.from({ length: batch }, (_, b) => Array.from(t.data.subarray(b * length, (b + 1) * length)));
}

export const textEncoderComponent: ForwardComponent = {
  golden: 'text_encoder_prior',
  inputs: ['in.input_ids', 'in.attention_mask'],
  async run(ctx) {
    const { rt } = ctx;
    const inputIds = rowsOf(requireInput(ctx, 'in.input_ids'), 'in.input_ids');
    const attentionMask = rowsOf(requireInput(ctx, 'in.attention_mask'), 'in.attention_mask');
    const model = await CLIPTextModel.fromPretrained(rt, ctx.modelDir, { dtype: ctx.dtype });
    try {
      // No rt.scope here: the capture's copies live in the caller's scope until it reads them.
      const out = await model.forward(inputIds, attentionMask, {
        outputHiddenStates: true,
        outputAttentions: true,
        capture: ctx.capture,
      });
      const named: [string, Tensor][] = [
        ['out.last_hidden_state', out.lastHiddenState],
        ['out.pooler_output', out.poolerOutput],
        ...(out.hiddenStates ?? []).map((t, i): [string, Tensor] => [`out.hidden_states.${i}`, t]),
        ...(out.attentions ?? []).map((t, i): [string, Tensor] => [`out.attentions.${i}`, t]),
      ];
      const values = await rt.readMany(named.map(([, t]) => t));
      for (const [, t] of named) t.dispose();
      return new Map(named.map(([name, t], i) => [name, { shape: [...t.shape], data: values[i] }]));
    } finally {
      model.dispose();
    }
  },
};
