// Mamba v1 causal depthwise conv1d + SiLU (spec §6 step 2): u_t = SiLU(b + Σ_j w_j · x_{t+j−(K−1)})
// with zero left padding (PyTorch Conv1d(padding=K−1) truncated to L). One invocation per
// (sequence, channel quad), sequential over time with the last K−1 inputs in registers: L loop
// back-edges per invocation. TypeScript reference: lib/ops/mamba.ts causalConv1dForward (in headForward64).
//
//   xz  (·, L, nSeq) texture: x = first dInner channels of in_proj's output (texels 0 .. D4−1).
//   cw  per channel quad: K weight vec4 (tap j) then the bias vec4.
//   u   buffer, row q·L + t of ld4 vec4 (copied into a texture by the caller).

struct Params {
  L: u32,
  nSeq: u32,
  D4: u32,
  ld4: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var xz: texture_2d_array<f32>;
@group(0) @binding(2) var<storage, read> cw: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> u: array<vec4<f32>>;

// #include "common/math.wgsl"

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = gid.x;
  let c4 = g % P.D4;
  let q = g / P.D4;
  if (q >= P.nSeq) {
    return;
  }
  let cb = c4 * {{KP1}}u;
{{DECL}}
  for (var t = 0u; t < P.L; t++) {
    let x = textureLoad(xz, vec2<i32>(i32(c4), i32(t)), i32(q), 0);
{{STEP}}
    u[(q * P.L + t) * P.ld4 + c4] = silu4(s);
  }
}
