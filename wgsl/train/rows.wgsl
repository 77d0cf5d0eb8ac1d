// Row gather / scatter with i32 row indices (−1 = no row), one invocation per (r, c) element,
// r < rows, c < width (flags bit 0: add to the destination instead of writing it).
// `gather`:  dst[dOff + r·dstLd + c] (+)= idx[r] ≥ 0 ? src[sOff + idx[r]·srcLd + c] : 0
// `scatter`: dst[dOff + idx[r]·dstLd + c] (+)= src[sOff + r·srcLd + c] for idx[r] ≥ 0 (indices unique)
// TypeScript references: gatherRowsRef / scatterRowsRef in lib/train/gpu/rows.ts.

struct Params {
  rows: u32,
  width: u32,
  sOff: u32,
  srcLd: u32,
  iOff: u32,
  dOff: u32,
  dstLd: u32,
  flags: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn gather(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nw: vec3<u32>) {
  let e = (wid.x + wid.y * nw.x) * 64u + li;
  if (e >= P.rows * P.width) {
    return;
  }
  let r = e / P.width;
  let c = e % P.width;
  let i = idx[P.iOff + r];
  var v = 0.0;
  if (i >= 0) {
    v = src[P.sOff + u32(i) * P.srcLd + c];
  }
  let o = P.dOff + r * P.dstLd + c;
  if ((P.flags & 1u) != 0u) {
    v += dst[o];
  }
  dst[o] = v;
}

@compute @workgroup_size(64)
fn scatter(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nw: vec3<u32>) {
  let e = (wid.x + wid.y * nw.x) * 64u + li;
  if (e >= P.rows * P.width) {
    return;
  }
  let r = e / P.width;
  let c = e % P.width;
  let i = idx[P.iOff + r];
  if (i < 0) {
    return;
  }
  var v = src[P.sOff + r * P.srcLd + c];
  let o = P.dOff + u32(i) * P.dstLd + c;
  if ((P.flags & 1u) != 0u) {
    v += dst[o];
  }
  dst[o] = v;
}
