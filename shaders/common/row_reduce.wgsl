// Reductions over segments of TPR consecutive invocations of a workgroup of RPW · TPR invocations:
// segment r (invocations r·TPR .. r·TPR + TPR − 1) reduces one row. TPR is a power of two. Every
// invocation of the workgroup must call these in uniform control flow (they hold barriers); each
// returns its segment's result to every invocation of the segment. With TPR = 1 an invocation owns
// its row and no barrier runs (CPU-emulated GPUs, where a barrier switches every invocation).

var<workgroup> row_scratch: array<f32, RPW * TPR>;

fn row_sum(v: f32, lid: u32) -> f32 {
  if (TPR == 1u) {
    return v;
  }
  row_scratch[lid] = v;
  workgroupBarrier();
  let lane = lid % TPR;
  for (var s = TPR / 2u; s > 0u; s = s >> 1u) {
    if (lane < s) {
      row_scratch[lid] += row_scratch[lid + s];
    }
    workgroupBarrier();
  }
  let r = row_scratch[lid - lane];
  // The next reduction may overwrite the scratch only after everyone has read this one.
  workgroupBarrier();
  return r;
}

fn row_max(v: f32, lid: u32) -> f32 {
  if (TPR == 1u) {
    return v;
  }
  row_scratch[lid] = v;
  workgroupBarrier();
  let lane = lid % TPR;
  for (var s = TPR / 2u; s > 0u; s = s >> 1u) {
    if (lane < s) {
      row_scratch[lid] = max(row_scratch[lid], row_scratch[lid + s]);
    }
    workgroupBarrier();
  }
  let r = row_scratch[lid - lane];
  workgroupBarrier();
  return r;
}
