// Residual fusion, encoding kernels (spec §4–5; official SelfNavigatedMamba.forward).
// One invocation per (image, position); loops run over C channels (keep C well under 65535,
// lavapipe's per-lane-group loop budget).
//
// X: (B, 2C, L) channels-first f32, channels [0, C) = signed inter-residual r, [C, 2C) = features f.
// Z: (B, 2C, L) hybrid residual [P(r) | P(s)].
//
// encode_r: Z[:, :C] = P(r); NAV[0, b, p] = unary u = sigmoid(Σ_c W[c]·P(r)[c] + bias);
//           NAV[1, b, p] = waypoint = u + mean_c P(r)[c].
// encode_s: s = f[nn] − f (written to S, (B, C, L)); Z[:, C:] = P(s).
//
// METHOD (override): 0 = abs, 1 = square, 2 = concat_abs_square, i.e.
// P[j] = (v[2j] + v[2j+1]) / 2 with v = [|x| ‖ x²] (adaptive average pool of 2C → C channels).

override METHOD: u32 = 2u;

struct Params {
  B: u32,   // images in this chunk
  C: u32,   // residual channels
  L: u32,   // positions per image
  bias: f32 // unary 1×1 conv bias
}

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<uniform> P: Params;
@group(0) @binding(2) var<storage, read_write> Z: array<f32>;
@group(0) @binding(3) var<storage, read> W: array<f32>;
@group(0) @binding(4) var<storage, read_write> NAV: array<f32>;
@group(0) @binding(5) var<storage, read> NN: array<u32>;
@group(0) @binding(6) var<storage, read_write> S: array<f32>;

// Channel i of the signed residual at position p of image b: r (which = 0) or s (which = 1).
fn residual(which: u32, b: u32, i: u32, p: u32, n: u32) -> f32 {
  let L = P.L;
  if (which == 0u) {
    return X[(b * 2u * P.C + i) * L + p];
  }
  let o = (b * 2u * P.C + P.C + i) * L;
  return X[o + n] - X[o + p];
}

// v[i] of the concatenation [|x| ‖ x²], i in [0, 2C).
fn cat_abs_square(which: u32, b: u32, i: u32, p: u32, n: u32) -> f32 {
  if (i < P.C) {
    return abs(residual(which, b, i, p, n));
  }
  let x = residual(which, b, i - P.C, p, n);
  return x * x;
}

// Encoded channel j of P(x).
fn encoded(which: u32, b: u32, j: u32, p: u32, n: u32) -> f32 {
  if (METHOD == 0u) {
    return abs(residual(which, b, j, p, n));
  }
  if (METHOD == 1u) {
    let x = residual(which, b, j, p, n);
    return x * x;
  }
  return (cat_abs_square(which, b, 2u * j, p, n) + cat_abs_square(which, b, 2u * j + 1u, p, n)) * 0.5;
}

// #include "common/math.wgsl"

@compute @workgroup_size(64)
fn encode_r(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  if (t >= P.B * P.L) {
    return;
  }
  let b = t / P.L;
  let p = t % P.L;
  var acc = 0.0;
  var sum = 0.0;
  for (var j = 0u; j < P.C; j++) {
    let v = encoded(0u, b, j, p, p);
    Z[(b * 2u * P.C + j) * P.L + p] = v;
    acc = acc + W[j] * v;
    sum = sum + v;
  }
  let u = sigmoid(acc + P.bias);
  NAV[t] = u;
  NAV[P.B * P.L + t] = u + sum / f32(P.C);
}

@compute @workgroup_size(64)
fn encode_s(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  if (t >= P.B * P.L) {
    return;
  }
  let b = t / P.L;
  let p = t % P.L;
  let n = NN[t];
  for (var c = 0u; c < P.C; c++) {
    S[(b * P.C + c) * P.L + p] = residual(1u, b, c, p, n);
  }
  for (var j = 0u; j < P.C; j++) {
    Z[(b * 2u * P.C + P.C + j) * P.L + p] = encoded(1u, b, j, p, n);
  }
}
