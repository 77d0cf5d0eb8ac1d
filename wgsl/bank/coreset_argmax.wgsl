// Greedy k-centre coreset, step 2 of 2 per iteration: reduce the (max, argmax) partials of
// bank/coreset_update.wgsl to the next centre, on the GPU (one workgroup), so that no readback is
// needed between iterations. Ties go to the lowest point index. Writes sel[t] (the chosen index),
// rad[t] (its anchor, an integer squared distance) and advances state (t += 1, cur = chosen). Spec: §2.
//
// Loop count per invocation: ceil(m / RWG) (≤ 512 for 2M points at 16 points per
// invocation), far below lavapipe's 65535 back-edge limit.

struct Params {
  m: u32,
  t_max: u32,
  _p0: u32,
  _p1: u32,
}

struct State {
  t: u32,
  cur: u32,
  _s0: u32,
  _s1: u32,
}

@group(0) @binding(0) var<storage, read> part_v: array<i32>;
@group(0) @binding(1) var<storage, read> part_i: array<u32>;
@group(0) @binding(2) var<storage, read_write> state: State;
@group(0) @binding(3) var<storage, read_write> sel: array<u32>;
@group(0) @binding(4) var<storage, read_write> rad: array<i32>;
@group(0) @binding(5) var<uniform> params: Params;

const RWG: u32 = {{RWG}}u;

var<workgroup> wv: array<i32, {{RWG}}>;
var<workgroup> wi: array<u32, {{RWG}}>;

fn better(v: i32, i: u32, bv: i32, bi: u32) -> bool {
  return v > bv || (v == bv && i < bi);
}

@compute @workgroup_size({{RWG}})
fn main(@builtin(local_invocation_index) li: u32) {
  var bv = -1;
  var bi = 0xffffffffu;
  for (var j = li; j < params.m; j += RWG) {
    let v = part_v[j];
    let i = part_i[j];
    let b = better(v, i, bv, bi);
    bv = select(bv, v, b);
    bi = select(bi, i, b);
  }
  wv[li] = bv;
  wi[li] = bi;
  workgroupBarrier();
  for (var s = RWG / 2u; s > 0u; s = s / 2u) {
    if (li < s) {
      let v = wv[li + s];
      let i = wi[li + s];
      if (better(v, i, wv[li], wi[li])) {
        wv[li] = v;
        wi[li] = i;
      }
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    let t = state.t;
    if (t < params.t_max) {
      sel[t] = wi[0];
      rad[t] = wv[0];
      state.cur = wi[0];
      state.t = t + 1u;
    }
  }
}
