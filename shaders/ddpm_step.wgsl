// One DDPMWuerstchenScheduler step on the device, in the operation order torch evaluates diffusers'
// expression (see src/pipeline/scheduling_ddpm_wuerstchen.ts `StepCoefficients`):
//   prev = sqrt_recip_alpha * (sample - (one_minus_alpha * model_output) / sqrt_one_minus_alpha_cumprod)
//          + noise_std * noise
// The coefficients are per step (every batch item shares the timestep, as `t.expand(B)` makes it).

struct Params {
  n: u32,
  sqrt_recip_alpha: f32,
  one_minus_alpha: f32,
  sqrt_one_minus_alpha_cumprod: f32,
  noise_std: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> sample: array<f32>;
@group(0) @binding(2) var<storage, read> model_output: array<T>;
@group(0) @binding(3) var<storage, read> noise: array<f32>;
@group(0) @binding(4) var<storage, read_write> prev: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) {
    return;
  }
  let eps = f32(model_output[i]);
  let mu = params.sqrt_recip_alpha * (sample[i] - (params.one_minus_alpha * eps) / params.sqrt_one_minus_alpha_cumprod);
  prev[i] = mu + params.noise_std * noise[i];
}
