// Masked attention scores q·kᵀ·scale of every head, written out as [B, H, Lq, Lk] f32, for callers
// that need the attention probabilities themselves (softmax of these rows), such as transformers'
// `output_attentions`. The forward pass itself uses attention.wgsl, which never materialises them.
//
// q [B, Lq, H·D] and k [B, Lk, H·D] in the Linear projections' layout (head h owns channels
// h·D..(h+1)·D). Masks as in attention.wgsl: a key hit by n masks (CAUSAL: key j > query i;
// PADDING_MASK: keep[b, j] != 1) scores −n·MASKED, a finite stand-in for torch's n·finfo.min
// (−inf for n = 2) that keeps the same order, so a softmax of the row gives torch's weights.
// One invocation per score: this path is for inspection, not speed.

const MASKED: f32 = 1e30;

struct Params {
  total: u32,
  heads: u32,
  lq: u32,
  lk: u32,
  head_dim: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<T>;
@group(0) @binding(2) var<storage, read> k: array<T>;
#if PADDING_MASK
@group(0) @binding(3) var<storage, read> keep: array<M>;
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;
#endif

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= params.total) {
    return;
  }
  let j = idx % params.lk;
  let i = (idx / params.lk) % params.lq;
  let bh = idx / (params.lk * params.lq);
  let h = bh % params.heads;
  let b = bh / params.heads;
  let row = params.heads * params.head_dim;
  let q_base = (b * params.lq + i) * row + h * params.head_dim;
  let k_base = (b * params.lk + j) * row + h * params.head_dim;
  var dot = 0.0;
  for (var c = 0u; c < params.head_dim; c++) {
    dot = fma(f32(q[q_base + c]), f32(k[k_base + c]), dot);
  }
  var level = 0.0;
#if CAUSAL
  level += select(0.0, 1.0, j > i);
#endif
#if PADDING_MASK
  level += select(0.0, 1.0, f32(keep[b * params.lk + j]) != 1.0);
#endif
  scores[idx] = select(dot * params.scale, -MASKED * level, level > 0.0);
}
