// Winograd F(4×4, 3×3) input transform V = Bᵀ d B of the head's 3×3 convolutions (6×6 input
// tiles, 36 positions): 2.25·16/36·… = 1.64× fewer GEMM multiply-adds than F(2×2, 3×3) on a 49×49
// grid (169 tiles × 36 vs 625 × 16). Same tiling, layouts and parameters as head_winograd.wgsl,
// with 4×4 output tiles: inputs at (by + r·(a−1), bx + r·(b−1)), a, b < 6. Points 0, ±1, ±2
// (Lavin & Gray). TypeScript reference: lib/model/reference.ts conv3x3Ref.

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

// Bᵀ = [[4,0,-5,0,1,0],[0,-4,-4,1,1,0],[0,4,-4,-1,1,0],[0,-2,-1,2,1,0],[0,2,-1,-2,1,0],[0,4,0,-5,0,1]]
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
