// SNARM training loss (lib/train/loss.ts snarmLoss, spec §8 "Loss"): mean over nHeads·n cells of
// the sigmoid focal loss on the decoder logits + unaryWeight · mean focal loss (probability form)
// of the unary map u, with their gradients. One invocation per element of the (nHeads + 1)·n
// term grid: rows 0 … nHeads − 1 are the heads' logits, row nHeads the unary map.
// terms[j·n + i] is the element's loss already divided by its mean's count (and weighted), so the
// plain sum of terms is the total loss.
//
// FL = α_t·ce·q^γ, q = 1 − p_t, p_t = p·t + (1 − p)(1 − t), α_t = α·t + (1 − α)(1 − t) (α < 0: 1);
// logits: ce = max(x, 0) − x·t + log1p(e^−|x|), dce = p − t, dq = −(2t − 1)·p(1 − p);
// probabilities: ce = −(t·max(log p, −100) + (1 − t)·max(log1p(−p), −100)),
//   dce = (p − t)/max(p(1 − p), 1e-12), dq = −(2t − 1).

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

// #include "common/math.wgsl"

// (value, d value / d input) of α_t·ce·q^γ.
fn focal(ce: f32, dce: f32, q: f32, dq: f32, t: f32, alpha: f32, gamma: f32) -> vec2<f32> {
  let at = select(1.0, alpha * t + (1.0 - alpha) * (1.0 - t), alpha >= 0.0);
  let qq = max(q, 0.0);
  let mod_ = select(pow(qq, gamma), 1.0, gamma == 0.0);
  let dmod = select(gamma * pow(qq, gamma - 1.0) * dq, 0.0, gamma == 0.0 || q <= 0.0);
  return vec2<f32>(at * ce * mod_, at * (dce * mod_ + ce * dmod));
}

// P: nHeads, n, lOff, uOff, tOff, dlOff, duOff, teOff, alpha, gamma, headScale = 1/(nHeads·n),
//    unaryScale = unaryWeight/n
@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let nHeads = U(0u);
  let n = U(1u);
  let lOff = U(2u);
  let uOff = U(3u);
  let tOff = U(4u);
  let dlOff = U(5u);
  let duOff = U(6u);
  let teOff = U(7u);
  let alpha = F(8u);
  let gamma = F(9u);
  let headScale = F(10u);
  let unaryScale = F(11u);
  let k = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (k >= (nHeads + 1u) * n) {
    return;
  }
  let j = k / n;
  let i = k - j * n;
  let t = {{T}}[tOff + i];
  if (j < nHeads) {
    let x = {{L}}[lOff + k];
    let p = sigmoid(x);
    let ce = max(x, 0.0) - x * t + log1p_(exp(-abs(x)));
    let q = 1.0 - (p * t + (1.0 - p) * (1.0 - t));
    let f = focal(ce, p - t, q, -(2.0 * t - 1.0) * p * (1.0 - p), t, alpha, gamma);
    {{TERMS}}[teOff + k] = f.x * headScale;
    {{DL}}[dlOff + k] = f.y * headScale;
  } else {
    let p = {{UN}}[uOff + i];
    let ce = -(t * max(log(p), -100.0) + (1.0 - t) * max(log1p_(-p), -100.0));
    let dce = (p - t) / max(p * (1.0 - p), 1e-12);
    let q = 1.0 - (p * t + (1.0 - p) * (1.0 - t));
    let f = focal(ce, dce, q, -(2.0 * t - 1.0), t, alpha, gamma);
    {{TERMS}}[teOff + k] = f.x * unaryScale;
    {{DU}}[duOff + i] = f.y * unaryScale;
  }
}
