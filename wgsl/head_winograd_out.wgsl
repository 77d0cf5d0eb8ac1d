// Winograd F(2×2, 3×3) output transforms Y = Aᵀ M A (Aᵀ = [[1,1,1,0],[0,1,-1,-1]]) of the head's
// 3×3 convolutions; see head_winograd.wgsl for the tiling. TypeScript reference:
// lib/model/reference.ts conv3x3Ref (block conv + bias) and decoderHeadRef (decoder head).
//
//   block_output: + bias, written to the token buffer dst (nSeq·h·w rows of ld4 vec4); a
//     suspicious position (inv[q·h·w + p] = j ≠ 0xffffffff) is also written to row q·Ls + j of xin
//     (the gather of the mixer input, spec §6 step 3c).
//   head_output: BatchNorm (eval, folded to scale/shift) → ReLU → 1×1 conv → one logit per
//     position, written to logits[logitBase + head·headStride + p] with head = seq / seqPerHead.

struct Params {
  nSeq: u32,
  T: u32,
  Ta: u32,
  C4: u32,
  h: u32,
  w: u32,
  r: u32,
  inLayer0: u32,
  logitBase: u32,
  headStride: u32,
  seqPerHead: u32,
  ld4: u32,
  Ls: u32,
  headBase: u32,
  lgpLd: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> axis: array<u32>;
@group(0) @binding(2) var Mt: texture_2d_array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> hp: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> logits: array<f32>;
@group(0) @binding(7) var<storage, read> inv: array<u32>;
@group(0) @binding(8) var<storage, read_write> xin: array<vec4<f32>>;
// head_output also writes logit (head, p) to lgp[p·lgpLd + headBase + head]: the position-major
// copy the pixel-map kernel reads as a texture (head_maps.wgsl).
@group(0) @binding(9) var<storage, read_write> lgp: array<f32>;

fn put(q: u32, y: u32, x: u32, c4: u32, v: vec4<f32>) {
  let p = q * P.h * P.w + y * P.w + x;
  dst[p * P.ld4 + c4] = v;
  let j = inv[p];
  if (j != 0xffffffffu) {
    xin[(q * P.Ls + j) * P.ld4 + c4] = v;
  }
}

fn logit(base: u32, hg: u32, p: u32, v: f32) {
  logits[base + p] = v;
  lgp[p * P.lgpLd + hg] = v;
}

struct Quad {
  y00: vec4<f32>,
  y01: vec4<f32>,
  y10: vec4<f32>,
  y11: vec4<f32>,
}

fn transform(c4: i32, t: i32, q: u32) -> Quad {
  let n = P.nSeq;
  let l = P.inLayer0 + q;
  let m00 = textureLoad(Mt, vec2<i32>(c4, t), i32(l + 0u * n), 0);
  let m01 = textureLoad(Mt, vec2<i32>(c4, t), i32(l + 1u * n), 0);
  let m02 = textureLoad(Mt, vec2<i32>(c4, t), i32(l + 2u * n), 0);
  let m03 = textureLoad(Mt, vec2<i32>(c4, t), i32(l + 3u * n), 0);
  let m10 = textureLoad(Mt, vec2<i32>(c4, t), i32(l + 4u * n), 0);
  let m11 = textureLoad(Mt, vec2<i32>(c4, t), i32(l + 5u * n), 0);
  let m12 = textureLoad(Mt, vec2<i32>(c4, t), i32(l + 6u * n), 0);
  let m13 = textureLoad(Mt, vec2<i32>(c4, t), i32(l + 7u * n), 0);
  let m20 = textureLoad(Mt, vec2<i32>(c4, t), i32(l + 8u * n), 0);
  let m21 = textureLoad(Mt, vec2<i32>(c4, t), i32(l + 9u * n), 0);
  let m22 = textureLoad(Mt, vec2<i32>(c4, t), i32(l + 10u * n), 0);
  let m23 = textureLoad(Mt, vec2<i32>(c4, t), i32(l + 11u * n), 0);
  let m30 = textureLoad(Mt, vec2<i32>(c4, t), i32(l + 12u * n), 0);
  let m31 = textureLoad(Mt, vec2<i32>(c4, t), i32(l + 13u * n), 0);
  let m32 = textureLoad(Mt, vec2<i32>(c4, t), i32(l + 14u * n), 0);
  let m33 = textureLoad(Mt, vec2<i32>(c4, t), i32(l + 15u * n), 0);
  // T2 = Aᵀ M (2×4), Y = T2 A (2×2)
  let a0 = m00 + m10 + m20; let a1 = m01 + m11 + m21; let a2 = m02 + m12 + m22; let a3 = m03 + m13 + m23;
  let b0 = m10 - m20 - m30; let b1 = m11 - m21 - m31; let b2 = m12 - m22 - m32; let b3 = m13 - m23 - m33;
  return Quad(a0 + a1 + a2, a1 - a2 - a3, b0 + b1 + b2, b1 - b2 - b3);
}

@compute @workgroup_size(64)
fn block_output(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = gid.x;
  let c4 = g % P.C4;
  let rest = g / P.C4;
  let t = rest % P.T;
  let q = rest / P.T;
  if (q >= P.nSeq) {
    return;
  }
  let by = axis[t / P.Ta];
  let bx = axis[t % P.Ta];
  let y = transform(i32(c4), i32(t), q);
  let b = bias[c4];
  let y1 = by + P.r;
  let x1 = bx + P.r;
  put(q, by, bx, c4, y.y00 + b);
  if (x1 < P.w) {
    put(q, by, x1, c4, y.y01 + b);
  }
  if (y1 < P.h) {
    put(q, y1, bx, c4, y.y10 + b);
    if (x1 < P.w) {
      put(q, y1, x1, c4, y.y11 + b);
    }
  }
}

@compute @workgroup_size(64)
fn head_output(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = gid.x;
  let t = g % P.T;
  let q = g / P.T;
  if (q >= P.nSeq) {
    return;
  }
  let head = q / P.seqPerHead;
  let hs = 3u * P.C4 + 1u;
  let hb = head * hs;
  var s = vec4<f32>(0.0);
  for (var c4 = 0u; c4 < P.C4; c4++) {
    let y = transform(i32(c4), i32(t), q);
    let sc = hp[hb + c4];
    let sh = hp[hb + P.C4 + c4];
    let ow = hp[hb + 2u * P.C4 + c4];
    s.x += dot(max(y.y00 * sc + sh, vec4<f32>(0.0)), ow);
    s.y += dot(max(y.y01 * sc + sh, vec4<f32>(0.0)), ow);
    s.z += dot(max(y.y10 * sc + sh, vec4<f32>(0.0)), ow);
    s.w += dot(max(y.y11 * sc + sh, vec4<f32>(0.0)), ow);
  }
  s += vec4<f32>(hp[hb + 3u * P.C4].x);
  let by = axis[t / P.Ta];
  let bx = axis[t % P.Ta];
  let y1 = by + P.r;
  let x1 = bx + P.r;
  let base = P.logitBase + head * P.headStride;
  let hg = P.headBase + head;
  logit(base, hg, by * P.w + bx, s.x);
  if (x1 < P.w) {
    logit(base, hg, by * P.w + x1, s.y);
  }
  if (y1 < P.h) {
    logit(base, hg, y1 * P.w + bx, s.z);
    if (x1 < P.w) {
      logit(base, hg, y1 * P.w + x1, s.w);
    }
  }
}
