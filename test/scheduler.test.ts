import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import type { HostTensor } from '../src/pipeline/host_tensor.js';
import { DDPMWuerstchenScheduler, DEFAULT_STAGE_C_TIMESTEPS } from '../src/pipeline/scheduling_ddpm_wuerstchen.js';
import { TorchGenerator, randnTensor } from '../src/pipeline/torch_generator.js';
import { openFileSource } from '../src/platform/file.js';
import { expectClose } from './helpers/compare.js';

// Golden: diffusers v0.21.0 DDPMWuerstchenScheduler on torch 1.13 (../shared/golden/scheduler/).
// README §2 tolerance for scheduler/*: max|a − ref| ≤ atol + rtol · max|ref|.
const TOL = { atol: 1e-6, rtol: 1e-5 };
const FIXTURES = fileURLToPath(new URL('./fixtures/scheduler/', import.meta.url));
const CONFIG = JSON.parse(readFileSync(FIXTURES + 'scheduler_config.json', 'utf8')) as Record<string, unknown>;

async function openGolden(file: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(await openFileSource(FIXTURES + file));
}

const stepPrefix = (i: number) => `step${String(i).padStart(2, '0')}.`;

describe('timesteps and _alphaCumprod', () => {
  let golden: SafetensorsFile;
  beforeAll(async () => {
    golden = await openGolden('timesteps.safetensors');
  });
  afterAll(() => golden.close());

  test('DEFAULT_STAGE_C_TIMESTEPS equals the float64 list of pipeline_wuerstchen_prior.py', async () => {
    const raw = await golden.readRaw('stage_c_default.timesteps_float64_source');
    expect([...DEFAULT_STAGE_C_TIMESTEPS]).toEqual([...new Float64Array(raw.buffer, raw.byteOffset, raw.length / 8)]);
  });

  test.each([1, 2, 3, 6, 10, 12, 30, 60])('setTimesteps(%i): float32 linspace(1, 0, n + 1), exact', async (n) => {
    const scheduler = DDPMWuerstchenScheduler.fromConfig(CONFIG);
    scheduler.setTimesteps(n);
    expect(scheduler.timesteps).toEqual(await golden.readF32(`linspace_${n}.timesteps`));
    expectClose(scheduler._alphaCumprod(scheduler.timesteps), await golden.readF32(`linspace_${n}.alpha_cumprod`), TOL, 'alpha_cumprod');
  });

  test('setTimesteps({ timesteps: DEFAULT_STAGE_C_TIMESTEPS }) casts to float32', async () => {
    const scheduler = DDPMWuerstchenScheduler.fromConfig(CONFIG);
    scheduler.setTimesteps({ timesteps: DEFAULT_STAGE_C_TIMESTEPS });
    expect(scheduler.timesteps).toEqual(await golden.readF32('stage_c_default.timesteps'));
    expectClose(scheduler._alphaCumprod(scheduler.timesteps), await golden.readF32('stage_c_default.alpha_cumprod'), TOL, 'alpha_cumprod');
  });

  test.each([0.5, 2.0])('_alphaCumprod with scaler %f', async (scaler) => {
    const scheduler = new DDPMWuerstchenScheduler({ scaler });
    scheduler.setTimesteps(6);
    const expected = await golden.readF32(`scaler_${scaler.toFixed(1)}.linspace_6.alpha_cumprod`);
    expectClose(scheduler._alphaCumprod(scheduler.timesteps), expected, TOL, 'alpha_cumprod');
  });

  test('addNoise is √ᾱ·x + √(1 − ᾱ)·noise per batch item', async () => {
    const scheduler = DDPMWuerstchenScheduler.fromConfig(CONFIG);
    scheduler.setTimesteps(6);
    const alphaCumprod = await golden.readF32('linspace_6.alpha_cumprod');
    const batch = scheduler.timesteps.length;
    const generator = new TorchGenerator(7);
    const x = randnTensor([batch, 4, 3], generator);
    const noise = randnTensor([batch, 4, 3], generator);
    const noisy = scheduler.addNoise(x, noise, scheduler.timesteps);
    const itemSize = 12;
    const expected = x.data.map((v, i) => {
      const a = alphaCumprod[Math.floor(i / itemSize)];
      return Math.sqrt(a) * v + Math.sqrt(1 - a) * noise.data[i];
    });
    expect(noisy.shape).toEqual([batch, 4, 3]);
    expectClose(noisy.data, expected, TOL, 'noisy samples');
  });
});

describe.each([
  // `drawsBefore`: the reference drew both files from one generator, linspace6's 6 steps × 3 tensors first.
  { file: 'step_linspace6.safetensors', schedule: 6 as const, drawsBefore: 0 },
  { file: 'step_stage_c_default.safetensors', schedule: { timesteps: DEFAULT_STAGE_C_TIMESTEPS }, drawsBefore: 18 },
])('step, $file', ({ file, schedule, drawsBefore }) => {
  let golden: SafetensorsFile;
  let scheduler: DDPMWuerstchenScheduler;
  beforeAll(async () => {
    golden = await openGolden(file);
    scheduler = DDPMWuerstchenScheduler.fromConfig(CONFIG);
    scheduler.setTimesteps(schedule);
  });
  afterAll(() => golden.close());

  const tensor = async (name: string): Promise<HostTensor> => ({
    shape: golden.tensors.get(name)!.shape,
    data: await golden.readF32(name),
  });

  test('every step with the recorded noise, and with zero noise', async () => {
    expect(scheduler.timesteps).toEqual(await golden.readF32('timesteps'));
    const steps = scheduler.timesteps.length - 1;
    for (let i = 0; i < steps; i++) {
      const p = stepPrefix(i);
      const t = await golden.readF32(`${p}timestep`);
      const c = scheduler.stepCoefficients(t);
      expect(c.prevTimestep, `${p}prev_t`).toEqual(await golden.readF32(`${p}prev_t`));
      expectClose(c.alphaCumprod, await golden.readF32(`${p}alpha_cumprod`), TOL, `${p}alpha_cumprod`);
      expectClose(c.alphaCumprodPrev, await golden.readF32(`${p}alpha_cumprod_prev`), TOL, `${p}alpha_cumprod_prev`);
      expect(c.noiseStd.every((v) => v === 0), `${p}noise term off`).toBe(i === steps - 1);

      const modelOutput = await tensor(`${p}model_output`);
      const sample = await tensor(`${p}sample`);
      const noise = await tensor(`${p}noise`);
      const prev = scheduler.step(modelOutput, t, sample, noise);
      expect(prev.shape).toEqual(sample.shape);
      expectClose(prev.data, await golden.readF32(`${p}prev_sample`), TOL, `${p}prev_sample`);
      const zero = { shape: noise.shape, data: new Float32Array(noise.data.length) };
      const prevZero = scheduler.step(modelOutput, t, sample, zero);
      expectClose(prevZero.data, await golden.readF32(`${p}prev_sample_zero_noise`), TOL, `${p}prev_sample_zero_noise`);
    }
  });

  test('noise drawn inside step from the generator, as randn_tensor does', async () => {
    // The golden drew sample, model_output, then step's noise from one Generator().manual_seed(1234).
    const generator = new TorchGenerator(1234);
    const shape = golden.tensors.get(`${stepPrefix(0)}sample`)!.shape;
    for (let i = 0; i < drawsBefore; i++) generator.randn(shape);
    for (let i = 0; i < scheduler.timesteps.length - 1; i++) {
      const p = stepPrefix(i);
      const sample = randnTensor(shape, generator);
      const modelOutput = randnTensor(shape, generator);
      expect(sample.data, `${p}sample`).toEqual(await golden.readF32(`${p}sample`));
      const prev = scheduler.step(modelOutput, scheduler.timesteps[i], sample, generator);
      expectClose(prev.data, await golden.readF32(`${p}prev_sample`), TOL, `${p}prev_sample`);
    }
  });
});

test.each(['0.5', '2.0'])('step with scaler %s', async (scaler) => {
  const golden = await openGolden('step_nondefault_scaler.safetensors');
  try {
    const scheduler = new DDPMWuerstchenScheduler({ scaler: Number(scaler) });
    scheduler.setTimesteps(4);
    for (let i = 0; i < 4; i++) {
      const p = `scaler_${scaler}.${stepPrefix(i)}`;
      const read = async (name: string): Promise<HostTensor> => ({
        shape: golden.tensors.get(p + name)!.shape,
        data: await golden.readF32(p + name),
      });
      const timestep = await golden.readF32(`${p}timestep`);
      const prev = scheduler.step(await read('model_output'), timestep, await read('sample'), await read('noise'));
      expectClose(prev.data, await golden.readF32(`${p}prev_sample`), TOL, `${p}prev_sample`);
    }
  } finally {
    await golden.close();
  }
});

describe('bad input', () => {
  test('fromConfig rejects a non-numeric value', () => {
    expect(() => DDPMWuerstchenScheduler.fromConfig({ scaler: '1' })).toThrow(
      'scheduler config: "scaler" must be a number, got "1"',
    );
  });

  test('setTimesteps needs a positive step count', () => {
    expect(() => new DDPMWuerstchenScheduler().setTimesteps(0)).toThrow(
      'setTimesteps: numInferenceSteps must be a positive integer, got 0',
    );
  });

  test('there is no step after the last timestep', () => {
    const scheduler = new DDPMWuerstchenScheduler();
    scheduler.setTimesteps(2);
    expect(() => scheduler.previousTimestep([0])).toThrow(
      'previousTimestep: timestep 0 is the last of the schedule; there is no step after it',
    );
  });

  test('step checks that the shapes agree', () => {
    const scheduler = new DDPMWuerstchenScheduler();
    scheduler.setTimesteps(2);
    const sample = { shape: [2, 3], data: new Float32Array(6) };
    const modelOutput = { shape: [2, 2], data: new Float32Array(4) };
    expect(() => scheduler.step(modelOutput, 1, sample, sample)).toThrow(
      'step: model output [2, 2] does not match sample [2, 3]',
    );
  });
});
