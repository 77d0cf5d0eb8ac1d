// Winograd F(m×m, 3×3) input transform V = Bᵀ d B of the head's 3×3 convolutions (block conv,
// r = 1, bias; decoder conv, dilation = padding = r, no bias; spec §6 steps 3b and 5), for m = 2
// (4×4 input tiles) and m = 4 (6×6 tiles, 1.64× fewer GEMM multiply-adds on 49×49). A dilated
// conv is a set of r² undilated convs on the sub-grids {y ≡ oy, x ≡ ox (mod r)}: a tile's
// outputs sit at (by + r·i, bx + r·k) and it reads inputs at (by + r·(a−1), bx + r·(b−1)),
// a, b < m + 2; `axis` lists the tile bases per axis. The body placeholder is filled for the tile size
// by lib/model/winograd.ts (winogradSource). The batched GEMMs between the transforms run in
// head/gemm.wgsl. TypeScript reference: lib/model/reference.ts conv3x3Ref (+ decoderHeadRef).
//
// Textures (rgba32float arrays, texel = 4 channels):
//   src  (C4, h·w, nSeq): input grid of every sequence, row p = y·w + x.
//   V    buffer, rows ((pos·nSeq + seq)·T + tile) of ld4 vec4 (pos = (m + 2)·a + b), copied by
//        the caller into a texture for the GEMM (buffer stores are cheaper than texture stores on
//        lavapipe).

struct Params {
  nSeq: u32,
  T: u32,
  Ta: u32,
  C4: u32,
  h: u32,
  w: u32,
  r: u32,
  outLayer0: u32,
  logitBase: u32,
  headStride: u32,
  seqPerHead: u32,
  ld4: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> axis: array<u32>;
@group(0) @binding(2) var src: texture_2d_array<f32>;
@group(0) @binding(3) var<storage, read_write> V: array<vec4<f32>>;

fn ld(c4: i32, y: i32, x: i32, q: i32) -> vec4<f32> {
  let ok = y >= 0 && x >= 0 && y < i32(P.h) && x < i32(P.w);
  let p = select(0, y * i32(P.w) + x, ok);
  return select(vec4<f32>(0.0), textureLoad(src, vec2<i32>(c4, p), q, 0), ok);
}

// The transform body is generated fully unrolled (lib/model/winograd.ts): private arrays indexed
// in loops are scalarised per lane on lavapipe and cost ~10× more.

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
  let rs = P.nSeq * P.T * P.ld4;
  let o = ((P.outLayer0 + q) * P.T + t) * P.ld4 + c4;
{{BODY}}
}
