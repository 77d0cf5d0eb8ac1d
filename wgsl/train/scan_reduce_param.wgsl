// Selective-scan backward, last pass: dA_log[c, n] and dD[c] summed over the nSeq sequences
// from the per-sequence partials train/scan_bwd.wgsl left in SCR at
// part + (s·dI + c)·(S+1) + n (n = S: dD). One invocation per (c, n); nSeq loop back-edges.
// Record function: lib/train/gpu/mamba_ops.ts recordSelectiveScanBackward.

struct Params {
  nSeq: u32,
  dI: u32,
  part: u32,
  aOff: u32,
  DOff: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
{{DECLS}}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  let SP1 = {{S}}u + 1u;
  if (j >= P.dI * SP1) {
    return;
  }
  var acc = 0.0;
  for (var q = 0u; q < P.nSeq; q++) {
    acc += {{SCR}}[P.part + q * P.dI * SP1 + j];
  }
  let c = j / SP1;
  let n = j % SP1;
  if (n < {{S}}u) {
    {{DA}}[P.aOff + c * {{S}}u + n] = acc;
  } else {
    {{DD}}[P.DOff + c] = acc;
  }
}
