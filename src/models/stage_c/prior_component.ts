/**
 * `wuerstchen forward prior`: WuerstchenPrior on the inputs of ../shared/golden/io/prior.safetensors
 * (`in.x` [B, c_in, H, W], `in.r` [B], `in.c` [B, L, c_cond] → `out`). Activations run in the
 * requested dtype, like the weights.
 */
import { requireInput, type ForwardComponent, type NamedTensor } from '../../nn/forward_component.js';
import { WuerstchenPrior } from './modeling_wuerstchen_prior.js';

export const priorComponent: ForwardComponent = {
  golden: 'prior',
  inputs: ['in.x', 'in.r', 'in.c'],
  async run(ctx) {
    const { rt, dtype, capture } = ctx;
    const [x, r, c] = this.inputs.map((name) => requireInput(ctx, name));
    const prior = await WuerstchenPrior.fromPretrained(rt, ctx.modelDir, { dtype });
    const xDevice = rt.upload(x.data, x.shape, dtype, 'in.x');
    const cDevice = rt.upload(c.data, c.shape, dtype, 'in.c');
    try {
      const out = await prior.forward(xDevice, r.data, cDevice, capture);
      const data = await rt.read(out);
      out.dispose();
      return new Map<string, NamedTensor>([['out', { shape: [...out.shape], data }]]);
    } finally {
      xDevice.dispose();
      cDevice.dispose();
      prior.dispose();
    }
  },
};
