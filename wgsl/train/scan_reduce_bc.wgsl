// Selective-scan backward, second pass (after train/scan_bwd.wgsl): the gradients of the
// per-token input and output matrices, summed over the dI channels:
//   dB[row, n] = Σ_c SCR[(row·dI + c)·S + n]        (SCR = λ_n·Δ·u per channel)
//   dC[row, n] = Σ_c dy[row, c] · h[row, c, n]      (h = states saved by train/scan.wgsl)
// One invocation per token row, loop over channels (dI ≤ 512 back-edges), states unrolled.
// Record function: lib/train/gpu/mamba_ops.ts recordSelectiveScanBackward.

struct Params {
  rows: u32,
  dI: u32,
  dyOff: u32,
  lddy: u32,
  dbOff: u32,
  lddb: u32,
  dcOff: u32,
  lddc: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
{{DECLS}}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (row >= P.rows) {
    return;
  }
{{DECL}}
  for (var c = 0u; c < P.dI; c++) {
    let gy = {{DY}}[P.dyOff + row * P.lddy + c];
    let sb = (row * P.dI + c) * {{S}}u;
{{STEP}}
  }
{{WRITE}}
}
