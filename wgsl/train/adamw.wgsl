// AdamW step (torch.optim.AdamW, amsgrad off; lib/train/adamw.ts AdamW.step) over one flat f32
// parameter buffer with f32 moments, one invocation per element:
//   θ ← θ·(1 − lr·wd·decay_i); m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²;
//   θ ← θ − stepSize·m/(√v/√bc₂ + eps), stepSize = lr/(1 − β₁ᵗ), bc₂ = 1 − β₂ᵗ.
// decay_i = 1 (weight decay) or 0 (no-decay set). The host rewrites the uniform each step.

struct Params {
  u: array<vec4<u32>, 8>,
}

@group(0) @binding(0) var<uniform> P: Params;
{{BINDINGS}}

fn U(i: u32) -> u32 {
  return P.u[i >> 2u][i & 3u];
}

fn F(i: u32) -> f32 {
  return bitcast<f32>(U(i));
}

// P: n, lr·wd, β₁, β₂, eps, stepSize, √bc₂
@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let n = U(0u);
  let lrwd = F(1u);
  let beta1 = F(2u);
  let beta2 = F(3u);
  let eps = F(4u);
  let stepSize = F(5u);
  let sqrtBc2 = F(6u);
  let i = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (i >= n) {
    return;
  }
  let g = {{G}}[i];
  let th = {{PARAM}}[i] * (1.0 - lrwd * {{DECAY}}[i]);
  let m = beta1 * {{M}}[i] + (1.0 - beta1) * g;
  let v = beta2 * {{V}}[i] + (1.0 - beta2) * g * g;
  {{M}}[i] = m;
  {{V}}[i] = v;
  {{PARAM}}[i] = th - stepSize * m / (sqrt(v) / sqrtBc2 + eps);
}
