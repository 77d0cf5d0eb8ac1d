// Anomaly maps of the SNARM head (spec §6 "Outputs", §7). TypeScript reference: lib/maps
// (resizeBilinear, gaussianFilter) through lib/model/maps.ts headMaps.
//
//   pixel_map: mean over heads of sigmoid(bilinear(logits, align_corners = true)) — the official
//     pixel_forward; logits come from lgT, an rgba32float texture (16 texels, h·w rows) holding
//     head j of position p in texel (j / 4, p), component j % 4.
//   gauss_v / gauss_h: the two passes of scipy.ndimage.gaussian_filter (σ, truncate 4, mode
//     "reflect"), per image; the taps are generated unrolled with the weights as literals
//     (lib/maps/gpu.ts); f32 accumulation.
// Maps are buffers of H rows of Wp floats (Wp = W padded to 64, so the caller can copy them into
// textures); each invocation writes 4 consecutive pixels of one row (one vec4).

struct Params {
  h: u32,
  w: u32,
  H: u32,
  W: u32,
  Wp4: u32,
  nHeads: u32,
  _p0: u32,
  _p1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var lgT: texture_2d<f32>;
@group(0) @binding(2) var src: texture_2d<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec4<f32>>;


fn coord(d: u32, n: u32, N: u32) -> f32 {
  // align_corners = true: corners map to corners
  return select(0.0, f32(d) * f32(n - 1u) / f32(N - 1u), N > 1u);
}

// #include "common/math.wgsl"

fn pixel(Y: u32, X: u32) -> f32 {
  let sy = coord(Y, P.h, P.H);
  let sx = coord(X, P.w, P.W);
  let y0 = min(u32(floor(sy)), P.h - 1u);
  let x0 = min(u32(floor(sx)), P.w - 1u);
  let y1 = min(y0 + 1u, P.h - 1u);
  let x1 = min(x0 + 1u, P.w - 1u);
  let fy = sy - f32(y0);
  let fx = sx - f32(x0);
  var s = vec4<f32>(0.0);
  let nq = (P.nHeads + 3u) / 4u;
  for (var j = 0u; j < nq; j++) {
    let a = textureLoad(lgT, vec2<u32>(j, y0 * P.w + x0), 0);
    let b = textureLoad(lgT, vec2<u32>(j, y0 * P.w + x1), 0);
    let c = textureLoad(lgT, vec2<u32>(j, y1 * P.w + x0), 0);
    let d = textureLoad(lgT, vec2<u32>(j, y1 * P.w + x1), 0);
    let top = a + (b - a) * fx;
    let bot = c + (d - c) * fx;
    let v = sigmoid4(top + (bot - top) * fy);
    // heads beyond nHeads (padding of the last texel) are masked out
    let k = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u);
    s += select(vec4<f32>(0.0), v, k < vec4<u32>(P.nHeads));
  }
  return (s.x + s.y + s.z + s.w) / f32(P.nHeads);
}

@compute @workgroup_size(64)
fn pixel_map(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = gid.x;
  let x4 = g % P.Wp4;
  let Y = g / P.Wp4;
  if (Y >= P.H) {
    return;
  }
  let X = 4u * x4;
  var v = vec4<f32>(0.0);
  if (X < P.W) {
    v.x = pixel(Y, X);
  }
  if (X + 1u < P.W) {
    v.y = pixel(Y, X + 1u);
  }
  if (X + 2u < P.W) {
    v.z = pixel(Y, X + 2u);
  }
  if (X + 3u < P.W) {
    v.w = pixel(Y, X + 3u);
  }
  dst[Y * P.Wp4 + x4] = v;
}

// scipy "reflect" (d c b a | a b c d | d c b a) for any offset
fn reflect(i: i32, n: i32) -> i32 {
  let p = 2 * n;
  var m = i % p;
  m = select(m, m + p, m < 0);
  return select(m, p - 1 - m, m >= n);
}

@compute @workgroup_size(64)
fn gauss_v(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = gid.x;
  let x4 = i32(g % P.Wp4);
  let Y = g / P.Wp4;
  if (Y >= P.H) {
    return;
  }
  let y = i32(Y);
  let n = i32(P.H);
{{GAUSS_V}}
  dst[Y * P.Wp4 + u32(x4)] = s;
}

fn at(Y: i32, X: i32) -> f32 {
  let x = reflect(X, i32(P.W));
  let v = textureLoad(src, vec2<i32>(x / 4, Y), 0);
  let c = x % 4;
  return select(select(select(v.w, v.z, c == 2), v.y, c == 1), v.x, c == 0);
}

@compute @workgroup_size(64)
fn gauss_h(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = gid.x;
  let x4 = i32(g % P.Wp4);
  let Y = g / P.Wp4;
  if (Y >= P.H) {
    return;
  }
  let X = 4 * x4;
  let y = i32(Y);
  var s = vec4<f32>(0.0);
  if (X - {{RADIUS}} >= 0 && X + 3 + {{RADIUS}} < i32(P.W)) {
    // interior: the 4 + 2·RADIUS pixels are whole texels
{{GAUSS_H_FAST}}
  } else {
{{GAUSS_H_EDGE}}
  }
  dst[Y * P.Wp4 + u32(x4)] = s;
}
