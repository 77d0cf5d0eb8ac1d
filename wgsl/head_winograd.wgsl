// Winograd F(2×2, 3×3) transforms of the head's 3×3 convolutions (block conv, r = 1, bias;
// decoder conv, dilation = padding = r, no bias; spec §6 steps 3b and 5). A dilated conv is a set
// of r² undilated convs on the sub-grids {y ≡ oy, x ≡ ox (mod r)}, so a tile is 2×2 outputs at
// (by + r·i, bx + r·k) and reads inputs at (by + r·(a−1), bx + r·(b−1)), a, b < 4; `axis` lists
// the tile bases per axis (lib/model/winograd.ts). The 16 batched GEMMs between the transforms run
// in head_gemm.wgsl. TypeScript reference: lib/model/reference.ts conv3x3Ref (+ decoderHeadRef).
//
// Textures (rgba32float arrays, texel = 4 channels):
//   src  (C4, h·w, nSeq): input grid of every sequence, row p = y·w + x.
//   V    buffer, rows ((pos·nSeq + seq)·T + tile) of ld4 vec4 (pos = 4a + b), copied by the
//        caller into a (ld4, T, 16·nSeq) texture for the GEMM (buffer stores are cheaper than
//        texture stores on lavapipe).
//   Mt   GEMM output in the same layout, read as a texture by head_winograd_out.wgsl.

struct Params {
  nSeq: u32,
  T: u32,
  Ta: u32,
  C4: u32,
  h: u32,
  w: u32,
  r: u32,
  outLayer0: u32,
  // head variant: logits offset, stride between heads, sequences per head
  logitBase: u32,
  headStride: u32,
  seqPerHead: u32,
  ld4: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> axis: array<u32>;

// ---------------------------------------------------------------- input transform
@group(0) @binding(2) var src: texture_2d_array<f32>;
@group(0) @binding(3) var<storage, read_write> V: array<vec4<f32>>;

fn ld(c4: i32, y: i32, x: i32, q: i32) -> vec4<f32> {
  let ok = y >= 0 && x >= 0 && y < i32(P.h) && x < i32(P.w);
  let p = select(0, y * i32(P.w) + x, ok);
  return select(vec4<f32>(0.0), textureLoad(src, vec2<i32>(c4, p), q, 0), ok);
}

@compute @workgroup_size(64)
fn input_transform(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = gid.x;
  let c4 = g % P.C4;
  let rest = g / P.C4;
  let t = rest % P.T;
  let q = rest / P.T;
  if (q >= P.nSeq) {
    return;
  }
  let by = i32(axis[t / P.Ta]);
  let bx = i32(axis[t % P.Ta]);
  let r = i32(P.r);
  let ci = i32(c4);
  let qi = i32(q);
  let y0 = by - r;
  let y1 = by;
  let y2 = by + r;
  let y3 = by + 2 * r;
  let x0 = bx - r;
  let x1 = bx;
  let x2 = bx + r;
  let x3 = bx + 2 * r;
  // rows of d
  let d00 = ld(ci, y0, x0, qi); let d01 = ld(ci, y0, x1, qi); let d02 = ld(ci, y0, x2, qi); let d03 = ld(ci, y0, x3, qi);
  let d10 = ld(ci, y1, x0, qi); let d11 = ld(ci, y1, x1, qi); let d12 = ld(ci, y1, x2, qi); let d13 = ld(ci, y1, x3, qi);
  let d20 = ld(ci, y2, x0, qi); let d21 = ld(ci, y2, x1, qi); let d22 = ld(ci, y2, x2, qi); let d23 = ld(ci, y2, x3, qi);
  let d30 = ld(ci, y3, x0, qi); let d31 = ld(ci, y3, x1, qi); let d32 = ld(ci, y3, x2, qi); let d33 = ld(ci, y3, x3, qi);
  // T1 = Bᵀ d  (Bᵀ = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]])
  let t00 = d00 - d20; let t01 = d01 - d21; let t02 = d02 - d22; let t03 = d03 - d23;
  let t10 = d10 + d20; let t11 = d11 + d21; let t12 = d12 + d22; let t13 = d13 + d23;
  let t20 = d20 - d10; let t21 = d21 - d11; let t22 = d22 - d12; let t23 = d23 - d13;
  let t30 = d10 - d30; let t31 = d11 - d31; let t32 = d12 - d32; let t33 = d13 - d33;
  // V = T1 B, row (pos·nSeq + q)·T + t
  let n = P.nSeq;
  let rs = n * P.T * P.ld4;
  let o = ((P.outLayer0 + q) * P.T + t) * P.ld4 + c4;
  V[o] = t00 - t02;
  V[o + rs] = t01 + t02;
  V[o + 2u * rs] = t02 - t01;
  V[o + 3u * rs] = t01 - t03;
  V[o + 4u * rs] = t10 - t12;
  V[o + 5u * rs] = t11 + t12;
  V[o + 6u * rs] = t12 - t11;
  V[o + 7u * rs] = t11 - t13;
  V[o + 8u * rs] = t20 - t22;
  V[o + 9u * rs] = t21 + t22;
  V[o + 10u * rs] = t22 - t21;
  V[o + 11u * rs] = t21 - t23;
  V[o + 12u * rs] = t30 - t32;
  V[o + 13u * rs] = t31 + t32;
  V[o + 14u * rs] = t32 - t31;
  V[o + 15u * rs] = t31 - t33;
}
