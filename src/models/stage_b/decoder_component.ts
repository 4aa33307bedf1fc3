/**
 * `wuerstchen forward decoder`: WuerstchenDiffNeXt on the inputs of ../shared/golden/io/decoder.safetensors
 * (`in.x` [B, c_in, H, W], `in.r` [B], `in.effnet` [B, effnet_embd, h, w], `in.clip` [B, L, clip_embd]
 * → `out`). Activations run in the requested dtype, like the weights.
 */
import { requireInput, type ForwardComponent, type NamedTensor } from '../../nn/forward_component.js';
import { WuerstchenDiffNeXt } from './modeling_wuerstchen_diffnext.js';

export const decoderComponent: ForwardComponent = {
  golden: 'decoder',
  inputs: ['in.x', 'in.r', 'in.effnet', 'in.clip'],
  async run(ctx) {
    const { rt, dtype, capture } = ctx;
    const [x, r, effnet, clip] = this.inputs.map((name) => requireInput(ctx, name));
    const decoder = await WuerstchenDiffNeXt.fromPretrained(rt, ctx.modelDir, { dtype });
    const [xDevice, effnetDevice, clipDevice] = [
      rt.upload(x.data, x.shape, dtype, 'in.x'),
      rt.upload(effnet.data, effnet.shape, dtype, 'in.effnet'),
      rt.upload(clip.data, clip.shape, dtype, 'in.clip'),
    ];
    try {
      const out = await decoder.forward(xDevice, r.data, effnetDevice, clipDevice, capture);
      const data = await rt.read(out);
      out.dispose();
      return new Map<string, NamedTensor>([['out', { shape: [...out.shape], data }]]);
    } finally {
      for (const t of [xDevice, effnetDevice, clipDevice]) t.dispose();
      decoder.dispose();
    }
  },
};
