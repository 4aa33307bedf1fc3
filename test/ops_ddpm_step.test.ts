import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { ddpmStep } from '../src/ops/ddpm_step.js';
import { DDPMWuerstchenScheduler } from '../src/pipeline/scheduling_ddpm_wuerstchen.js';
import { openFileSource } from '../src/platform/file.js';
import { expectClose } from './helpers/compare.js';
import { getRuntime } from './helpers/gpu.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/scheduler/', import.meta.url));
// README §2 `scheduler/*`: atol 1e-6, rtol 1e-5 (scale-aware).
const TOL = { atol: 1e-6, rtol: 1e-5 };

describe('ddpmStep on the GPU equals DDPMWuerstchenScheduler.step', () => {
  it.each(['linspace6', 'stage_c_default'])('every step of %s (f32, and f16 model output)', async (schedule) => {
    const rt = await getRuntime();
    const golden = await SafetensorsFile.open(await openFileSource(`${FIXTURES}step_${schedule}.safetensors`));
    const scheduler = new DDPMWuerstchenScheduler();
    scheduler.setTimesteps(schedule === 'linspace6' ? 6 : { timesteps: await golden.readF32('timesteps') });
    const steps = [...golden.tensors.keys()].filter((k) => k.endsWith('.prev_sample')).map((k) => k.split('.')[0]);
    for (const p of steps) {
      const shape = golden.tensors.get(`${p}.sample`)!.shape;
      const c = scheduler.stepCoefficients(await golden.readF32(`${p}.timestep`));
      const sample = rt.upload(await golden.readF32(`${p}.sample`), shape);
      const model = await golden.readF32(`${p}.model_output`);
      const noise = rt.upload(await golden.readF32(`${p}.noise`), shape);
      const prev = ddpmStep(rt, sample, rt.upload(model, shape), noise, c);
      expectClose(await rt.read(prev), await golden.readF32(`${p}.prev_sample`), TOL, `${schedule} ${p}.prev_sample`);
      // f16 model output: the step itself stays f32; compare with the host step on the f16-rounded output.
      const modelF16 = rt.upload(model, shape, 'f16');
      const rounded = await rt.read(modelF16);
      const host = scheduler.step({ shape, data: rounded }, c.timestep, { shape, data: await golden.readF32(`${p}.sample`) }, {
        shape,
        data: await golden.readF32(`${p}.noise`),
      });
      expectClose(await rt.read(ddpmStep(rt, sample, modelF16, noise, c)), host.data, TOL, `${schedule} ${p} f16 model output`);
    }
  });
});
