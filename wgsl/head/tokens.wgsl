// Token-wise kernels of a Self-Navigated Mamba branch (spec §6 steps 2–4), one invocation per
// token (sequence q = scan·B + b, scan-order index i), channels as {{C4}} vec4 in registers. TypeScript reference: lib/model/reference.ts headForward64 (lib/ops/norm.ts addRmsNormForward, layerNormForward).
//
//   seq_init: stream = E[b, perm[scan, i]] (row-major embedding → scan order; block 0 has no add),
//             hn = RMSNorm(stream)·w                       (fused add + RMSNorm, eps 1e-5)
//   add_norm: stream = stream + h; hn = RMSNorm(stream)·w   (blocks k > 0)
//   final_ln: feat[scan][b, perm[scan, i]] = LayerNorm(h + stream)   (un-permuted to row-major)
//
// Inputs are textures (C4 texels used, rows, layers); outputs are buffers of rows with ld4 vec4
// (copied into textures by the caller): texture loads and buffer stores are the cheap directions
// on lavapipe.

struct Params {
  L: u32,
  nSeq: u32,
  B: u32,
  C4: u32,
  eOff4: u32,
  ld4: u32,
  _p0: u32,
  _p1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> perm: array<u32>;
@group(0) @binding(2) var E: texture_2d_array<f32>;
@group(0) @binding(3) var hT: texture_2d_array<f32>;
@group(0) @binding(4) var sT: texture_2d_array<f32>;
@group(0) @binding(5) var<storage, read_write> streamOut: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> wA: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> wB: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> outB: array<vec4<f32>>;

const EPS: f32 = 1e-5;

// The per-channel code ({{...}} blocks) is generated unrolled over the {{C4}} channel quads by
// lib/model/tokens.ts: a private array indexed in a loop is scalarised per lane on lavapipe.
// Out-of-range invocations are clamped to the last token (they rewrite identical values) instead
// of returning early, so the weight loads stay uniform.

@compute @workgroup_size(64)
fn seq_init(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = min(gid.x, P.nSeq * P.L - 1u);
  let q = g / P.L;
  let i = g % P.L;
  let s = q / P.B;
  let b = q % P.B;
  let p = i32(perm[s * P.L + i]);
  let o = g * P.ld4;
{{INIT_LOAD}}
{{RMS_STORE}}
}

@compute @workgroup_size(64)
fn add_norm(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = min(gid.x, P.nSeq * P.L - 1u);
  let y = i32(g % P.L);
  let l = i32(g / P.L);
  let o = g * P.ld4;
{{ADD_LOAD}}
{{RMS_STORE}}
}

@compute @workgroup_size(64)
fn final_ln(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = min(gid.x, P.nSeq * P.L - 1u);
  let q = g / P.L;
  let i = g % P.L;
  let s = q / P.B;
  let y = i32(i);
  let l = i32(q);
{{SUM_LOAD}}
  let o = (q * P.L + perm[s * P.L + i]) * P.ld4;
{{LN_STORE}}
}
