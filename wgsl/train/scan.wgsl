// Training forward of the selective scan (Mamba v1 S6, spec §6 "Mamba v1" step 5, without the
// gate), saving every state for the backward pass. Per sequence s, channel c and state n:
//   A = −exp(A_log[c, n]),  h_t = exp(Δ_t·A)·h_{t−1} + Δ_t·B_t,n·u_t (h_{−1} = 0),
//   y_t = Σ_n C_t,n·h_t,n + D_c·u_t.
// Δ is the delta input as given (the caller applies dt bias and softplus). TypeScript reference:
// lib/ops/mamba.ts selectiveScanForward (which adds softplus(delta + dt bias) itself).
// Record function: lib/train/gpu/mamba_ops.ts recordSelectiveScanForward.
//
// One invocation per (sequence, channel), sequential over time with the S states in registers;
// the state loop is unrolled by the generator, so the only loop is over time (Ls back-edges per
// invocation, well below lavapipe's 65535 per 8-lane group).
//
// Operands: u at uOff + row·ldu + c; Δ at dOff + row·ldd + c; A_log (dI, S) at aOff + c·S + n;
// B at bOff + row·ldB + n; C at cOff + row·ldC + n; D at DOff + c; y at yOff + row·ldy + c
// (row = s·Ls + t); saved states h_t at ST[(row·dI + c)·S + n] (the states tensor from 0).

struct Params {
  nSeq: u32,
  Ls: u32,
  dI: u32,
  uOff: u32,
  ldu: u32,
  dOff: u32,
  ldd: u32,
  aOff: u32,
  bOff: u32,
  ldB: u32,
  cOff: u32,
  ldC: u32,
  DOff: u32,
  yOff: u32,
  ldy: u32,
  _p0: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
{{DECLS}}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = (wid.y * nwg.x + wid.x) * 64u + lid;
  let q = g / P.dI;
  let c = g % P.dI;
  if (q >= P.nSeq) {
    return;
  }
  let ab = P.aOff + c * {{S}}u;
{{INIT}}
  let Dc = {{D}}[P.DOff + c];
  for (var t = 0u; t < P.Ls; t++) {
    let row = q * P.Ls + t;
    let dl = {{DELTA}}[P.dOff + row * P.ldd + c];
    let u = {{U}}[P.uOff + row * P.ldu + c];
    let dlu = dl * u;
    let bb = P.bOff + row * P.ldB;
    let cb = P.cOff + row * P.ldC;
    let sb = (row * P.dI + c) * {{S}}u;
    var acc = Dc * u;
{{STEP}}
    {{Y}}[P.yOff + row * P.ldy + c] = acc;
  }
}
