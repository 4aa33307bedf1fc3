// Vector quantisation as diffusers' VectorQuantizer (legacy=False) computes it.
//
// Default kernel, one invocation per row z_r of C channels (T), codebook rows e_j (E):
//   index_r = argmin_j torch.cdist(z, e)[r, j], the first j on ties. For more than 25 rows
//   cdist is ATen's `_euclidean_dist`: sqrt(clamp_min([-2z, |z|², 1]·[e, 1, |e|²], 0)), a
//   product summed term by term, each product rounded to f32 before it is added, and norms
//   x.pow(2).sum(-1) in ATen's row_sum order. This kernel repeats that arithmetic exactly, so
//   near-ties resolve as in torch (test/ops_vq.test.ts checks it against torch's distances).
//   z_q_r = z_r + (e_index − z_r) (diffusers' straight-through form, in f32), index_r as f32,
//   and err_r = Σ_c (e_index,c − z_r,c)² for the loss.
// LOSS kernel, one workgroup: loss = β·m + m with m = Σ_r err_r / (rows·C) (diffusers' commitment
// and codebook terms, equal in the forward pass).

#if LOSS
struct Params {
  rows: u32,
  count: f32,
  beta: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> row_err: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) t: u32) {
  var acc = 0.0;
  for (var r = t; r < params.rows; r += WG) {
    acc += row_err[r];
  }
  partial[t] = acc;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (t < half) {
      partial[t] += partial[t + half];
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    let m = partial[0] / params.count;
    loss[0] = params.beta * m + m;
  }
}
#else
struct Params {
  rows: u32,
  codes: u32,
  channels: u32,
  // The largest finite f32, see `unfused`.
  f32_max: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> z: array<T>;
@group(0) @binding(2) var<storage, read> codebook: array<E>;
@group(0) @binding(3) var<storage, read_write> z_q: array<T>;
@group(0) @binding(4) var<storage, read_write> indices: array<f32>;
@group(0) @binding(5) var<storage, read_write> row_err: array<f32>;

// Returns p unchanged, but through an operation the compiler cannot see through, so it cannot
// fuse the multiply that made p with the add that uses it (an FMA would skip p's rounding).
fn unfused(p: f32) -> f32 {
  return min(p, params.f32_max);
}

// Element i of z (from_codebook false) or of the codebook (true).
fn element(from_codebook: bool, i: u32) -> f32 {
  if (from_codebook) {
    return f32(codebook[i]);
  }
  return f32(z[i]);
}

// Σ_c v_c² over the C values at `base` in ATen's row_sum order (SumKernel.cpp): four partial sums
// over c mod 4, the tail added to the first, then the partials added in order. For C < 8 this
// is exactly what torch does; wider rows take its vectorised path, which sums in another order.
fn sq_norm(from_codebook: bool, base: u32) -> f32 {
  var partials = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  let full = params.channels / 4u * 4u;
  for (var c = 0u; c < full; c += 4u) {
    for (var k = 0u; k < 4u; k++) {
      let v = element(from_codebook, base + c + k);
      partials[k] += unfused(v * v);
    }
  }
  var s = partials[0];
  for (var c = full; c < params.channels; c++) {
    let v = element(from_codebook, base + c);
    s += unfused(v * v);
  }
  return s + partials[1] + partials[2] + partials[3];
}

// Correctly rounded sqrt of a finite v ≥ 0 (zero for subnormals, which GPUs may flush anyway).
// WGSL's sqrt may be off by a few ulps; cdist values one ulp apart must not collapse or split.
// Digit-by-digit integer square root of the significand scaled to 48 bits.
fn sqrt_rn(v: f32) -> f32 {
  let bits = bitcast<u32>(v);
  if (bits < 0x00800000u) {
    return 0.0;
  }
  // v = m · 2^(e − 23) with a 24-bit m; n = m · 2^s with s ∈ {23, 24} making e − 23 − s even,
  // so sqrt(v) = sqrt(n) · 2^f with sqrt(n) in [2^23, 2^24). n's bit pair (2p + 1, 2p) is bit
  // pair (2p + 1 − s, 2p − s) of m, read from m·2 so the lowest pair (one bit of m) fits too.
  let e = i32(bits >> 23u) - 127;
  let m2 = ((bits & 0x7fffffu) | 0x800000u) << 1u;
  let s = select(23i, 24i, ((e - 23) & 1) == 0);
  let f = (e - 23 - s) / 2;
  var root = 0u;
  var rem = 0u;
  for (var pair = 23i; pair >= 0i; pair--) {
    let at = 2 * pair + 1 - s;
    let digits = select(0u, (m2 >> u32(max(at, 0))) & 3u, at >= 0);
    rem = (rem << 2u) | digits;
    let trial = (root << 2u) | 1u;
    root <<= 1u;
    if (rem >= trial) {
      rem -= trial;
      root |= 1u;
    }
  }
  // rem = n − root²; sqrt(n) > root + 1/2 exactly when rem > root (never a tie for integers).
  if (rem > root) {
    root += 1u;
  }
  // root is 2^23..2^24 with the leading bit implicit; a carry to 2^24 bumps the exponent.
  return bitcast<f32>(u32(f + 149) * 0x800000u + root);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= params.rows) {
    return;
  }
  let row = r * params.channels;
  let z_norm = sq_norm(false, row);
  var best = 0u;
  var best_dist = 0.0;
  // The smallest squared distance so far (its sqrt is best_dist): a code at least this far cannot
  // win, so the exact sqrt only runs when the running minimum improves.
  var best_sq = 0.0;
  for (var j = 0u; j < params.codes; j++) {
    let code = j * params.channels;
    var sq = unfused(-2.0 * f32(z[row]) * f32(codebook[code]));
    for (var c = 1u; c < params.channels; c++) {
      sq += unfused(-2.0 * f32(z[row + c]) * f32(codebook[code + c]));
    }
    sq = max(sq + z_norm + sq_norm(true, code), 0.0);
    if (j == 0u || sq < best_sq) {
      let dist = sqrt_rn(sq);
      if (j == 0u || dist < best_dist) {
        best = j;
        best_dist = dist;
      }
      best_sq = sq;
    }
  }
  let code = best * params.channels;
  var err = 0.0;
  for (var c = 0u; c < params.channels; c++) {
    let x = f32(z[row + c]);
    let d = f32(codebook[code + c]) - x;
    z_q[row + c] = T(x + d);
    err += d * d;
  }
  indices[r] = f32(best);
  row_err[r] = err;
}
#endif
