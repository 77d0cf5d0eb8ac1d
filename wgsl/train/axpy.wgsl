// out[i] = x[i] · m[i] + y[i] (m = dropout multipliers; flag bit 0 clear = no m, out = x + y).
// Element offsets in P; one invocation per element, 2-D dispatch (wid.x + wid.y · nx) · 256.
// TypeScript reference: lib/train/gpu/axpy.ts axpyRef.

struct Params {
  n: u32,
  xOff: u32,
  mOff: u32,
  yOff: u32,
  oOff: u32,
  flags: u32,
  nx: u32,
  _p: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> M: array<f32>;
@group(0) @binding(3) var<storage, read> Y: array<f32>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = (wid.x + wid.y * P.nx) * 256u + li;
  if (i >= P.n) {
    return;
  }
  var v = X[P.xOff + i];
  if ((P.flags & 1u) != 0u) {
    v = v * M[P.mOff + i];
  }
  O[P.oOff + i] = v + Y[P.yOff + i];
}
