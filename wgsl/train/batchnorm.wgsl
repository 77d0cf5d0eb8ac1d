// BatchNorm2d in training mode over channels-last rows x (M, C) (M = B·h·w positions; SNARM
// decoder, spec §6 step 5): batch statistics (biased variance for the normalisation) with
// PyTorch's running-statistics update (unbiased variance), the affine output, and the VJP.
// eps = 1e-5. TypeScript references: lib/ops/norm.ts batchNormForward / batchNormBackward /
// batchNormRunningUpdate. Host side: lib/train/gpu/norm.ts.
//
// Statistics kernels: one workgroup per 8 channels, 32 row lanes striding over the M rows
// (M ≤ 40 000 → ≤ 2·1250 loop back-edges per 8-lane group), workgroup tree reductions; the mean
// is reduced first, then the centred sum of squares (two-pass, no cancellation).
// Apply kernels: one invocation per element.

struct Params {
  u: array<vec4<u32>, 8>,
}

@group(0) @binding(0) var<uniform> P: Params;
{{BINDINGS}}

const EPS: f32 = 1e-5;

fn U(i: u32) -> u32 {
  return P.u[i >> 2u][i & 3u];
}

fn F(i: u32) -> f32 {
  return bitcast<f32>(U(i));
}

var<workgroup> red: array<f32, 256>;
var<workgroup> red2: array<f32, 256>;

// Tree-reduce red (and red2) over the 32 row lanes; the sums end in red[cc], red2[cc] (lane 0).
fn reduce2(lid: u32) {
  let lane = lid >> 3u;
  workgroupBarrier();
  if (lane < 16u) {
    red[lid] += red[lid + 128u];
    red2[lid] += red2[lid + 128u];
  }
  workgroupBarrier();
  if (lane < 8u) {
    red[lid] += red[lid + 64u];
    red2[lid] += red2[lid + 64u];
  }
  workgroupBarrier();
  if (lane < 4u) {
    red[lid] += red[lid + 32u];
    red2[lid] += red2[lid + 32u];
  }
  workgroupBarrier();
  if (lane < 2u) {
    red[lid] += red[lid + 16u];
    red2[lid] += red2[lid + 16u];
  }
  workgroupBarrier();
  if (lane < 1u) {
    red[lid] += red[lid + 8u];
    red2[lid] += red2[lid + 8u];
  }
  workgroupBarrier();
}

// mean, rstd = 1/sqrt(var + eps) (biased var), running stats ← (1 − m)·running + m·(mean, var·M/(M−1)).
// P: M, C, xOff, mOff, rOff, rmOff, rvOff, momentum (f32)
@compute @workgroup_size(256)
fn bn_stats(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let M = U(0u);
  let C = U(1u);
  let xOff = U(2u);
  let mOff = U(3u);
  let rOff = U(4u);
  let rmOff = U(5u);
  let rvOff = U(6u);
  let mom = F(7u);
  let cc = lid & 7u;
  let lane = lid >> 3u;
  let c = wid.x * 8u + cc;
  var s = 0.0;
  if (c < C) {
    for (var r = lane; r < M; r += 32u) {
      s += {{X}}[xOff + r * C + c];
    }
  }
  red[lid] = s;
  red2[lid] = 0.0;
  reduce2(lid);
  let mean = red[cc] / f32(M);
  workgroupBarrier();
  var v = 0.0;
  if (c < C) {
    for (var r = lane; r < M; r += 32u) {
      let e = {{X}}[xOff + r * C + c] - mean;
      v += e * e;
    }
  }
  red[lid] = v;
  red2[lid] = 0.0;
  reduce2(lid);
  if (lane == 0u && c < C) {
    let vr = red[cc] / f32(M);
    {{MEAN}}[mOff + c] = mean;
    {{RSTD}}[rOff + c] = inverseSqrt(vr + EPS);
    {{RM}}[rmOff + c] = (1.0 - mom) * {{RM}}[rmOff + c] + mom * mean;
    {{RV}}[rvOff + c] = (1.0 - mom) * {{RV}}[rvOff + c] + mom * vr * (f32(M) / f32(M - 1u));
  }
}

// y = γ·(x − mean)·rstd + β.  P: M, C, xOff, mOff, rOff, gOff, bOff, yOff
@compute @workgroup_size(64)
fn bn_apply(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let M = U(0u);
  let C = U(1u);
  let xOff = U(2u);
  let mOff = U(3u);
  let rOff = U(4u);
  let gOff = U(5u);
  let bOff = U(6u);
  let yOff = U(7u);
  let i = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (i >= M * C) {
    return;
  }
  let c = i % C;
  let xh = ({{X}}[xOff + i] - {{MEAN}}[mOff + c]) * {{RSTD}}[rOff + c];
  {{Y}}[yOff + i] = {{G}}[gOff + c] * xh + {{B}}[bOff + c];
}

// dβ = Σ dy, dγ = Σ dy·x̂ over the M rows.  P: M, C, xOff, mOff, rOff, dyOff, dgOff, dbOff
@compute @workgroup_size(256)
fn bn_bstats(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let M = U(0u);
  let C = U(1u);
  let xOff = U(2u);
  let mOff = U(3u);
  let rOff = U(4u);
  let dyOff = U(5u);
  let dgOff = U(6u);
  let dbOff = U(7u);
  let cc = lid & 7u;
  let lane = lid >> 3u;
  let c = wid.x * 8u + cc;
  var sb = 0.0;
  var sg = 0.0;
  if (c < C) {
    let mean = {{MEAN}}[mOff + c];
    let rs = {{RSTD}}[rOff + c];
    for (var r = lane; r < M; r += 32u) {
      let g = {{DY}}[dyOff + r * C + c];
      sb += g;
      sg += g * ({{X}}[xOff + r * C + c] - mean) * rs;
    }
  }
  red[lid] = sb;
  red2[lid] = sg;
  reduce2(lid);
  if (lane == 0u && c < C) {
    {{DB}}[dbOff + c] = red[cc];
    {{DG}}[dgOff + c] = red2[cc];
  }
}

// dx = γ·rstd/M·(M·dy − dβ − x̂·dγ).  P: M, C, xOff, mOff, rOff, gOff, dyOff, dxOff, dgOff, dbOff
@compute @workgroup_size(64)
fn bn_bapply(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let M = U(0u);
  let C = U(1u);
  let xOff = U(2u);
  let mOff = U(3u);
  let rOff = U(4u);
  let gOff = U(5u);
  let dyOff = U(6u);
  let dxOff = U(7u);
  let dgOff = U(8u);
  let dbOff = U(9u);
  let i = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (i >= M * C) {
    return;
  }
  let c = i % C;
  let rs = {{RSTD}}[rOff + c];
  let xh = ({{X}}[xOff + i] - {{MEAN}}[mOff + c]) * rs;
  let fm = f32(M);
  {{DX}}[dxOff + i] = {{G}}[gOff + c] * rs / fm *
    (fm * {{DY}}[dyOff + i] - {{DB}}[dbOff + c] - xh * {{DG}}[dgOff + c]);
}
