// Merge per-segment partial top-K lists (from bank/knn_tiled.wgsl) into a running top-K per query.
// Segments P.s0 .. P.s1-1 are merged in increasing order, each list in its ascending order, with
// strict `<`: equal values keep the earlier (lower bank index) entry. The host splits the segment
// range over dispatches so that (s1 - s0) * K stays far below lavapipe's 65535 loop limit.
//
// Layouts: PD/PI (segments, Qp, K) partial lists; TD/TI (Qp, K) running top-K, ascending.
// Template values: WG, K, STATE_LOADS, INSERT, STATE_STORES.

struct Params {
  qp: u32,
  s0: u32,
  s1: u32,
  pad: u32,
}

@group(0) @binding(0) var<storage, read> PD: array<f32>;
@group(0) @binding(1) var<storage, read> PI: array<u32>;
@group(0) @binding(2) var<storage, read_write> TD: array<f32>;
@group(0) @binding(3) var<storage, read_write> TI: array<u32>;
@group(0) @binding(4) var<uniform> P: Params;

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let q = gid.x;
  if (q >= P.qp) {
    return;
  }
{{STATE_LOADS}}
  for (var s = P.s0; s < P.s1; s++) {
    let o = (s * P.qp + q) * {{K}}u;
    for (var r = 0u; r < {{K}}u; r++) {
      let v = PD[o + r];
      let id = PI[o + r];
{{INSERT}}
    }
  }
{{STATE_STORES}}
}
