// Scalar activation functions in f32, shared by the GEMM epilogue and the activation kernels.
// WGSL has no erf: erf and the erfc tail are fitted here (weighted minimax, evaluated with fma in
// f32); max error 1.2 ulp for erf, 4e-6 relative for the erfc tail on [1, 6].

// erf(a) for 0 <= a < 1, written as a + a * P(a²) so small arguments keep full relative accuracy.
fn erf_small(a: f32) -> f32 {
  let t = a * a;
  var p = 7.889109111e-05;
  p = fma(p, t, -8.020838723e-04);
  p = fma(p, t, 5.189535208e-03);
  p = fma(p, t, -2.685444430e-02);
  p = fma(p, t, 1.128360033e-01);
  p = fma(p, t, -3.761262596e-01);
  p = fma(p, t, 1.283791661e-01);
  return fma(a, p, a);
}

// erfc(a) for a >= 1 as exp(-Q(a)), Q fitted in (a - 1) on [1, 6]: relative accuracy in the tail,
// where 1 - erf(a) would cancel. Past 6, erfc < 3e-17 and the clamp's error is below any f32 use.
fn erfc_tail(a: f32) -> f32 {
  let u = min(a, 6.0) - 1.0;
  var q = 8.295396015e-08;
  q = fma(q, u, -2.578441126e-06);
  q = fma(q, u, 3.681123417e-05);
  q = fma(q, u, -3.256062046e-04);
  q = fma(q, u, 2.047660062e-03);
  q = fma(q, u, -1.004660130e-02);
  q = fma(q, u, 4.153680056e-02);
  q = fma(q, u, 8.431251049e-01);
  q = fma(q, u, 2.638963938e+00);
  q = fma(q, u, 1.849605680e+00);
  return exp(-q);
}

fn erf_f32(x: f32) -> f32 {
  let a = abs(x);
  let r = select(1.0 - erfc_tail(a), erf_small(a), a < 1.0);
  return select(r, -r, x < 0.0);
}

// Exact GELU, 0.5·x·(1 + erf(x/√2)). For x < 0 it uses erfc(|x|/√2) directly instead of 1 + erf,
// which would cancel to a few ulp of 1 (torch's formula); both agree within f32 noise.
fn gelu_erf(x: f32) -> f32 {
  let a = abs(x) * 0.70710678118654752;
  if (x >= 0.0) {
    return 0.5 * x * (1.0 + select(1.0 - erfc_tail(a), erf_small(a), a < 1.0));
  }
  return 0.5 * x * select(erfc_tail(a), 1.0 - erf_small(a), a < 1.0);
}

// tanh saturates to ±1 in f32 past |u| = 9; the clamp keeps exp-based builtins away from inf/inf.
fn gelu_tanh(x: f32) -> f32 {
  let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + tanh(clamp(u, -10.0, 10.0)));
}

fn sigmoid(x: f32) -> f32 {
  return 1.0 / (1.0 + exp(-x));
}

fn silu(x: f32) -> f32 {
  return x / (1.0 + exp(-x));
}

// CLIP's QuickGELU: x·sigmoid(1.702·x).
fn quick_gelu(x: f32) -> f32 {
  return x * sigmoid(1.702 * x);
}

fn leaky_relu(x: f32, slope: f32) -> f32 {
  return select(x * slope, x, x >= 0.0);
}
