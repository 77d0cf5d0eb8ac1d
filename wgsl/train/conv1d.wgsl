// Training forward of the Mamba causal depthwise conv1d (spec §6 "Mamba v1" step 2, before SiLU):
//   y[row, c] = b[c] + Σ_k w[c, k] · x[row − (K−1) + k, c],  zero where t − (K−1) + k < 0,
// with row = s·Ls + t (sequence s, time t). One invocation per output element (row, c); the K taps
// are unrolled by the generator (no loop: nothing counts against lavapipe's loop limit).
// TypeScript reference: lib/ops/mamba.ts causalConv1dForward. Record function:
// lib/train/gpu/mamba_ops.ts recordCausalConv1dForward.
//
// Operands (flat f32, element offsets and leading dimensions in P):
//   x (rows, ·) at xOff + row·ldx + c;  w (C, K) at wOff + c·K + k;  b (C) at bOff + c;
//   y (rows, ·) at yOff + row·ldy + c.
// The generator declares one storage binding per distinct tensor and names the buffers.

struct Params {
  rows: u32,
  Ls: u32,
  C: u32,
  xOff: u32,
  ldx: u32,
  wOff: u32,
  bOff: u32,
  yOff: u32,
  ldy: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
{{DECLS}}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (e >= P.rows * P.C) {
    return;
  }
  let row = e / P.C;
  let c = e % P.C;
  let t = row % P.Ls;
  let wb = P.wOff + c * {{K}}u;
  var s = {{B}}[P.bOff + c];
{{TAPS}}
  {{Y}}[P.yOff + row * P.ldy + c] = s;
}
