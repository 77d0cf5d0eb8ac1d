// Scalar math shared by the SNARM kernels, each function written once (inserted where a shader
// says `// #include "common/math.wgsl"`; lib/gpu/pipeline.ts loadWgsl). TypeScript references:
// lib/ops/pointwise.ts (sigmoid, silu, softplus), lib/model/selective_scan_ref.ts (softplus).

// log(1 + e) for e > −1, accurate for small |e| (series below 1e-3).
fn log1p_(e: f32) -> f32 {
  return select(log(1.0 + e), e * (1.0 - e * (0.5 - e * (1.0 / 3.0))), abs(e) < 1e-3);
}

// Logistic sigmoid 1 / (1 + e^−x), without overflow for large |x|.
fn sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  let r = 1.0 / (1.0 + e);
  return select(e * r, r, x >= 0.0);
}

// SiLU x·sigmoid(x) (Mamba's activation).
fn silu(x: f32) -> f32 {
  return x * sigmoid(x);
}

// torch F.softplus(x, beta = 1, threshold = 20): log(1 + e^x), x itself above 20.
fn softplus(x: f32) -> f32 {
  return select(log1p_(exp(min(x, 20.0))), x, x > 20.0);
}

fn sigmoid4(x: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(sigmoid(x.x), sigmoid(x.y), sigmoid(x.z), sigmoid(x.w));
}

fn silu4(x: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(silu(x.x), silu(x.y), silu(x.z), silu(x.w));
}

fn softplus4(x: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(softplus(x.x), softplus(x.y), softplus(x.z), softplus(x.w));
}
