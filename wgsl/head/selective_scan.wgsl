// Selective scan (Mamba v1 S6, spec §6 step 5), mamba_ssm selective_scan_ref semantics with
// delta_softplus, a D skip and a SiLU(z) gate:
//   Δ = softplus(delta + delta_bias)   h_n = exp(Δ·A_n)·h_n + Δ·B_n·u   y = (Σ_n C_n·h_n + D·u)·SiLU(z)
// TypeScript reference: lib/model/selective_scan_ref.ts (selectiveScanRef).
//
// Parallel over (sequence, group of {{CG}} channel quads), sequential over time with the
// {{NSTATE}} states of every channel held in registers (vec4 over 4 channels). All inner loops
// (states, channel quads, Δ rank) are unrolled by the generator, so the only loop is over time:
// L back-edges per invocation (L ≤ 8192 by the texture height), far below lavapipe's silent
// 65535 loop back-edge limit per 8-lane group and dispatch.
//
// Layouts (rgba32float 2-D array textures, texel (x, t, seq) = 4 consecutive channels):
//   uTex  (dInner/4, L, nSeq): u after conv1d + SiLU.
//   zTex  (·, L, nSeq): gate z at texel x = zOff4 + channel quad.
//   rowTex (ceil(ROWLEN/4), L, nSeq): per-token scalars [dt_raw (R) | B (NSTATE) | C (NSTATE)];
//     R = 0 means delta is given in dTex (standalone mode), R > 0 means Δ_pre = dt_proj(dt_raw)
//     is computed here (the head pipeline: dt_proj fused into the scan).
//   dTex  (dInner/4, L, nSeq): delta before bias (standalone mode only; unused otherwise).
//   chan: per channel quad c4, {{CHAN_STRIDE}} vec4: A[n] (NSTATE), D, delta_bias, dt_proj W[·, r] (R).
//   y     buffer, row seq·L + t of yLd4 vec4: output y·SiLU(z).

struct Params {
  nSeq: u32,
  L: u32,
  dInner4: u32,
  groupsPerSeq: u32,
  zOff4: u32,
  yLd4: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var uTex: texture_2d_array<f32>;
@group(0) @binding(2) var zTex: texture_2d_array<f32>;
@group(0) @binding(3) var rowTex: texture_2d_array<f32>;
@group(0) @binding(4) var dTex: texture_2d_array<f32>;
@group(0) @binding(5) var<storage, read> chan: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> yB: array<vec4<f32>>;

// #include "common/math.wgsl"

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = gid.x;
  let q = g / P.groupsPerSeq;
  if (q >= P.nSeq) {
    return;
  }
  let c4base = (g % P.groupsPerSeq) * {{CG}}u;
  let qi = i32(q);
  _ = textureDimensions(dTex);
{{DECL}}
  for (var t = 0u; t < P.L; t++) {
    let ti = i32(t);
{{ROW}}
{{STEP}}
  }
}
