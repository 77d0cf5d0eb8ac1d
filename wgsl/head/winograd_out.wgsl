// Winograd F(m×m, 3×3) output transforms Y = Aᵀ M A of the head's 3×3 convolutions (m = 2 or 4;
// the Aᵀ matrices are in lib/model/winograd.ts, which generates the placeholder bodies):
// `block_output` = block conv + bias + fused gather of the navigated tokens; `head_output` =
// decoder head BatchNorm → ReLU → 1×1 conv → logits. TypeScript reference:
// lib/model/reference.ts conv3x3Ref, decoderHeadRef.

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
// copy the pixel-map kernel reads as a texture (head/maps.wgsl).
@group(0) @binding(9) var<storage, read_write> lgp: array<f32>;

// The transform bodies ({{...}}) are generated fully unrolled by lib/model/winograd.ts: private
// arrays indexed in loops are scalarised per lane on lavapipe and cost ~10× more.

fn logit(base: u32, hg: u32, p: u32, v: f32) {
  logits[base + p] = v;
  lgp[p * P.lgpLd + hg] = v;
}

fn put(q: u32, y: u32, x: u32, c4: u32, v: vec4<f32>) {
  let p = q * P.h * P.w + y * P.w + x;
  dst[p * P.ld4 + c4] = v;
  let j = inv[p];
  if (j != 0xffffffffu) {
    xin[(q * P.Ls + j) * P.ld4 + c4] = v;
  }
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
  let ci = i32(c4);
  let ti = i32(t);
  let n = P.nSeq;
  let l = P.inLayer0 + q;
  let b = bias[c4];
{{TRANSFORM}}
{{BLOCK_PUT}}
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
  let ti = i32(t);
  let n = P.nSeq;
  let l = P.inLayer0 + q;
{{HEAD_DECL}}
  for (var c4 = 0u; c4 < P.C4; c4++) {
    let ci = i32(c4);
{{TRANSFORM}}
    let sc = hp[hb + c4];
    let sh = hp[hb + P.C4 + c4];
    let ow = hp[hb + 2u * P.C4 + c4];
{{HEAD_ACC}}
  }
  let ob = hp[hb + 3u * P.C4].x;
  let by = axis[t / P.Ta];
  let bx = axis[t % P.Ta];
  let base = P.logitBase + head * P.headStride;
  let hg = P.headBase + head;
{{HEAD_PUT}}
}
