// Multi-head attention, flash style: out = softmax(q·kᵀ·scale + mask)·v for every (batch, head),
// with an online softmax over key tiles staged in workgroup memory, so the Lq×Lk scores never
// reach global memory (Stage B level 1 would need ~684 MB of them).
//
// q [B, Lq, H·D], k and v [B, Lk, H·D], out [B, Lq, H·D], read as vec4 rows: head h owns channels
// h·D..(h+1)·D, the layout the Linear projections write, so no permutes are needed around it.
// One invocation owns one query row (its q and its output accumulator stay in registers); a
// workgroup holds BQ queries of one (batch, head) and walks the keys BK (a multiple of 4) at a
// time. Statistics are f32 whatever T is.
//
// Masks (CAUSAL: key j > query i; PADDING_MASK: keep[b, j] != 1) follow transformers' CLIP: each
// mask that hits a key adds finfo(f32).min to its score, so a key hit by both gets −inf. A score
// plus finfo.min rounds to finfo.min itself, so torch's row softmax reduces to: the keys hit by the
// fewest masks share the weight (by score if none hit them, uniformly if they are all hit once).
// WGSL lets compilers assume there are no infinities, so that ordering is built from finite
// stand-ins instead: a key hit n times scores −n·MASKED (its dot product drops out, as in torch),
// and keys past the end score UNUSED, which exp2 turns into exactly 0 next to any real score.
// (A row with every key hit twice, NaN in torch, comes out as the plain mean of its values.)

const D4: u32 = D / 4u;
const MASKED: f32 = 1e30;
const UNUSED: f32 = -4e30;

struct Params {
  batch_heads_tiles: u32,
  q_tiles: u32,
  heads: u32,
  lq: u32,
  lk: u32,
  // The softmax scale times log2(e): scores are kept in base 2 so exp2 does the exponentials.
  scale_log2e: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<T>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<T>>;
#if PADDING_MASK
@group(0) @binding(4) var<storage, read> keep: array<M>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<T>>;
#else
@group(0) @binding(4) var<storage, read_write> out: array<vec4<T>>;
#endif

var<workgroup> k_tile: array<vec4<f32>, BK * D4>;
var<workgroup> v_tile: array<vec4<f32>, BK * D4>;
#if PADDING_MASK
// How many masks hit each key of the tile from padding: 0 or 1, four keys per vec4.
var<workgroup> pad_level: array<vec4<f32>, BK / 4u>;
#endif

fn hsum(x: vec4<f32>) -> f32 {
  return (x.x + x.y) + (x.z + x.w);
}

@compute @workgroup_size(BQ)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  // The grid spills into y past 65535 workgroups; the whole workgroup leaves together.
  let group = wid.x + wid.y * nwg.x;
  if (group >= params.batch_heads_tiles) {
    return;
  }
  let q_tile = group % params.q_tiles;
  let bh = group / params.q_tiles;
  let h = bh % params.heads;
  let b = bh / params.heads;
  let row = params.heads * D4;
  let lq = params.lq;
  let lk = params.lk;

  // Invocations past the last query still stage tiles; they compute on a copy of the last query.
  let i = q_tile * BQ + lid;
  let qi = min(i, lq - 1u);
  let q_base = (b * lq + qi) * row + h * D4;
  var q_reg: array<vec4<f32>, D4>;
  var o: array<vec4<f32>, D4>;
  for (var c = 0u; c < D4; c++) {
    q_reg[c] = vec4<f32>(q[q_base + c]) * params.scale_log2e;
    o[c] = vec4<f32>(0.0);
  }
  var m = UNUSED;
  var l = 0.0;

  let kv_base = b * lk * row + h * D4;
  for (var t0 = 0u; t0 < lk; t0 += BK) {
    workgroupBarrier();
    for (var e = lid; e < BK * D4; e += BQ) {
      let key = t0 + e / D4;
      var kx = vec4<f32>(0.0);
      var vx = vec4<f32>(0.0);
      if (key < lk) {
        let at = kv_base + key * row + e % D4;
        kx = vec4<f32>(k[at]);
        vx = vec4<f32>(v[at]);
      }
      k_tile[e] = kx;
      v_tile[e] = vx;
    }
#if PADDING_MASK
    for (var j = lid; j < BK; j += BQ) {
      let key = t0 + j;
      pad_level[j / 4u][j % 4u] = select(0.0, 1.0, key < lk && f32(keep[b * lk + min(key, lk - 1u)]) != 1.0);
    }
#endif
    workgroupBarrier();

    // Four keys per step: four independent dot products, one max check, one exp2 of a vec4.
    for (var j = 0u; j < BK; j += 4u) {
      var d0 = vec4<f32>(0.0);
      var d1 = vec4<f32>(0.0);
      var d2 = vec4<f32>(0.0);
      var d3 = vec4<f32>(0.0);
      for (var c = 0u; c < D4; c++) {
        let qc = q_reg[c];
        d0 = fma(qc, k_tile[j * D4 + c], d0);
        d1 = fma(qc, k_tile[(j + 1u) * D4 + c], d1);
        d2 = fma(qc, k_tile[(j + 2u) * D4 + c], d2);
        d3 = fma(qc, k_tile[(j + 3u) * D4 + c], d3);
      }
      var s = vec4<f32>(hsum(d0), hsum(d1), hsum(d2), hsum(d3));
      let keys = vec4<u32>(t0 + j) + vec4<u32>(0u, 1u, 2u, 3u);
      var level = vec4<f32>(0.0);
#if PADDING_MASK
      level += pad_level[j / 4u];
#endif
#if CAUSAL
      level += select(vec4<f32>(0.0), vec4<f32>(1.0), keys > vec4<u32>(qi));
#endif
      s = select(s, -MASKED * level, level > vec4<f32>(0.0));
      s = select(vec4<f32>(UNUSED), s, keys < vec4<u32>(lk));

      // Online softmax: rescale what was accumulated only when the running max grows, which
      // after the first keys is rare.
      let m_new = max(m, max(max(s.x, s.y), max(s.z, s.w)));
      if (m_new > m) {
        let alpha = exp2(m - m_new);
        l *= alpha;
        for (var c = 0u; c < D4; c++) {
          o[c] *= alpha;
        }
        m = m_new;
      }
      let p = exp2(s - vec4<f32>(m));
      l += hsum(p);
      for (var c = 0u; c < D4; c++) {
        var acc = fma(vec4<f32>(p.x), v_tile[j * D4 + c], o[c]);
        acc = fma(vec4<f32>(p.y), v_tile[(j + 1u) * D4 + c], acc);
        acc = fma(vec4<f32>(p.z), v_tile[(j + 2u) * D4 + c], acc);
        o[c] = fma(vec4<f32>(p.w), v_tile[(j + 3u) * D4 + c], acc);
      }
    }
  }

  if (i < lq) {
    let out_base = (b * lq + i) * row + h * D4;
    for (var c = 0u; c < D4; c++) {
      out[out_base + c] = vec4<T>(o[c] / l);
    }
  }
}
