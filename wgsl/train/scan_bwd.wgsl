// Training backward of the selective scan (forward: train/scan.wgsl), per (sequence, channel),
// reverse time with the state adjoint λ (λ_t = C_t·dy_t + a_{t+1}·λ_{t+1}, a = exp(Δ·A)):
//   dΔ_t = Σ_n λ_n·(A_n·a·h_{t−1} + B_t,n·u_t),   du_t = D·dy_t + Σ_n λ_n·Δ_t·B_t,n,
//   dA_n = Σ_t λ_n·Δ_t·a·h_{t−1} → dA_log = dA·A,  dD = Σ_t dy_t·u_t,
//   dB_t,n = Σ_c λ_n·Δ_t·u_t (and dC_t,n = Σ_c dy_t·h_t,n in train/scan_reduce_bc.wgsl).
// TypeScript reference: lib/ops/mamba.ts selectiveScanBackward. h_{t−1} is read from the
// states saved by the forward. Record function: lib/train/gpu/mamba_ops.ts
// recordSelectiveScanBackward. Ls back-edges per invocation (states unrolled by the generator).
//
// Writes du, dΔ (strided, like the forward operands) and the scratch tensor SCR:
//   SCR[(row·dI + c)·S + n] = λ_n·Δ_t·u_t (per-channel terms of dB, summed over c later);
//   SCR[part + (s·dI + c)·(S+1) + n] = this sequence's dA_log[c, n] (n < S) and dD[c] (n = S).

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
  dyOff: u32,
  lddy: u32,
  duOff: u32,
  lddu: u32,
  ddOff: u32,
  lddd: u32,
  part: u32,
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
  var dDacc = 0.0;
  let strideT = P.dI * {{S}}u;
  for (var i = 0u; i < P.Ls; i++) {
    let t = P.Ls - 1u - i;
    let row = q * P.Ls + t;
    let dl = {{DELTA}}[P.dOff + row * P.ldd + c];
    let u = {{U}}[P.uOff + row * P.ldu + c];
    let gy = {{DY}}[P.dyOff + row * P.lddy + c];
    dDacc += gy * u;
    var du = gy * Dc;
    var ddl = 0.0;
    let dlu = dl * u;
    let bb = P.bOff + row * P.ldB;
    let cb = P.cOff + row * P.ldC;
    let sb = (row * P.dI + c) * {{S}}u;
    let has = t > 0u;
    let pb = select(sb, sb - strideT, has);
{{STEP}}
    {{DU}}[P.duOff + row * P.lddu + c] = du;
    {{DDELTA}}[P.ddOff + row * P.lddd + c] = ddl;
  }
  let ob = P.part + (q * P.dI + c) * ({{S}}u + 1u);
{{FINISH}}
  {{SCR}}[ob + {{S}}u] = dDacc;
}
