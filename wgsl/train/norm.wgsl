// Row normalisations of the SNARM head for training (spec §6): fused add + RMSNorm of the Mamba
// residual stream (step 3a) and the branch's final LayerNorm (step 3), forward (saving per-row
// statistics) and backward, plus the column sum that reduces per-row weight-gradient terms.
// eps = 1e-5. TypeScript references: lib/ops/norm.ts. Host side: lib/train/gpu/norm.ts.
//
// Row kernels: one invocation per row (64 per workgroup), loops over d ≤ 256 → ≤ 3·256 loop
// back-edges per 8-lane group (lavapipe limit 65535). Column sum: one workgroup per 8 columns,
// 32 row lanes each striding over the rows, then a workgroup tree reduction (rows ≤ 40 000 →
// ≤ 1250 back-edges per lane group).

struct Params {
  u: array<vec4<u32>, 8>,
}

@group(0) @binding(0) var<uniform> P: Params;
{{BINDINGS}}

const EPS: f32 = 1e-5;

fn U(i: u32) -> u32 {
  return P.u[i >> 2u][i & 3u];
}

fn rowIndex(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * 64u + lid;
}

// stream = h (+ streamIn); y = stream · rstd · w; rstd = 1/sqrt(mean(stream²) + eps).
// P: rows, d, hOff, sOff, hasStream, wOff, soOff, yOff, rOff
@compute @workgroup_size(64)
fn rms_fwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows = U(0u);
  let d = U(1u);
  let hOff = U(2u);
  let sOff = U(3u);
  let hasStream = U(4u);
  let wOff = U(5u);
  let soOff = U(6u);
  let yOff = U(7u);
  let rOff = U(8u);
  let r = rowIndex(wid, nwg, lid);
  if (r >= rows) {
    return;
  }
  let base = r * d;
  var ss = 0.0;
  for (var k = 0u; k < d; k++) {
    var s = {{H}}[hOff + base + k];
    if (hasStream != 0u) {
      s += {{SIN}}[sOff + base + k];
    }
    {{SOUT}}[soOff + base + k] = s;
    ss += s * s;
  }
  let rs = inverseSqrt(ss / f32(d) + EPS);
  {{RSTD}}[rOff + r] = rs;
  for (var k = 0u; k < d; k++) {
    {{Y}}[yOff + base + k] = {{SOUT}}[soOff + base + k] * rs * {{W}}[wOff + k];
  }
}

// dStream = (dStreamOut) + rstd·w·dy − s·rstd³/d·Σ dy·w·s ; scratch = dy·s·rstd (→ dWeight).
// P: rows, d, soOff, rOff, wOff, dyOff, dsoOff, hasDso, dsOff, scOff
@compute @workgroup_size(64)
fn rms_bwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows = U(0u);
  let d = U(1u);
  let soOff = U(2u);
  let rOff = U(3u);
  let wOff = U(4u);
  let dyOff = U(5u);
  let dsoOff = U(6u);
  let hasDso = U(7u);
  let dsOff = U(8u);
  let scOff = U(9u);
  let r = rowIndex(wid, nwg, lid);
  if (r >= rows) {
    return;
  }
  let base = r * d;
  let rs = {{RSTD}}[rOff + r];
  var dot = 0.0;
  for (var k = 0u; k < d; k++) {
    let s = {{SOUT}}[soOff + base + k];
    let g = {{DY}}[dyOff + base + k];
    dot += g * {{W}}[wOff + k] * s;
    {{SCR}}[scOff + base + k] = g * s * rs;
  }
  let c = dot * rs * rs * rs / f32(d);
  for (var k = 0u; k < d; k++) {
    let s = {{SOUT}}[soOff + base + k];
    var v = rs * {{W}}[wOff + k] * {{DY}}[dyOff + base + k] - s * c;
    if (hasDso != 0u) {
      v += {{DSO}}[dsoOff + base + k];
    }
    {{DS}}[dsOff + base + k] = v;
  }
}

// LayerNorm: y = (x − mean)·rstd·w + b (biased variance).  P: rows, d, xOff, wOff, bOff, yOff, mOff, rOff
@compute @workgroup_size(64)
fn ln_fwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows = U(0u);
  let d = U(1u);
  let xOff = U(2u);
  let wOff = U(3u);
  let bOff = U(4u);
  let yOff = U(5u);
  let mOff = U(6u);
  let rOff = U(7u);
  let r = rowIndex(wid, nwg, lid);
  if (r >= rows) {
    return;
  }
  let base = xOff + r * d;
  var m = 0.0;
  for (var k = 0u; k < d; k++) {
    m += {{X}}[base + k];
  }
  m /= f32(d);
  var v = 0.0;
  for (var k = 0u; k < d; k++) {
    let c = {{X}}[base + k] - m;
    v += c * c;
  }
  let rs = inverseSqrt(v / f32(d) + EPS);
  {{MEAN}}[mOff + r] = m;
  {{RSTD}}[rOff + r] = rs;
  for (var k = 0u; k < d; k++) {
    {{Y}}[yOff + r * d + k] = ({{X}}[base + k] - m) * rs * {{W}}[wOff + k] + {{B}}[bOff + k];
  }
}

// LayerNorm VJP: g = dy·w, dx = rstd·(g − mean(g) − x̂·mean(g·x̂)); scratch = dy·x̂ (→ dWeight).
// P: rows, d, xOff, mOff, rOff, wOff, dyOff, dxOff, scOff
@compute @workgroup_size(64)
fn ln_bwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows = U(0u);
  let d = U(1u);
  let xOff = U(2u);
  let mOff = U(3u);
  let rOff = U(4u);
  let wOff = U(5u);
  let dyOff = U(6u);
  let dxOff = U(7u);
  let scOff = U(8u);
  let r = rowIndex(wid, nwg, lid);
  if (r >= rows) {
    return;
  }
  let base = r * d;
  let m = {{MEAN}}[mOff + r];
  let rs = {{RSTD}}[rOff + r];
  var mg = 0.0;
  var mgx = 0.0;
  for (var k = 0u; k < d; k++) {
    let xh = ({{X}}[xOff + base + k] - m) * rs;
    let dy = {{DY}}[dyOff + base + k];
    let g = dy * {{W}}[wOff + k];
    mg += g;
    mgx += g * xh;
    {{SCR}}[scOff + base + k] = dy * xh;
  }
  mg /= f32(d);
  mgx /= f32(d);
  for (var k = 0u; k < d; k++) {
    let xh = ({{X}}[xOff + base + k] - m) * rs;
    let g = {{DY}}[dyOff + base + k] * {{W}}[wOff + k];
    {{DX}}[dxOff + base + k] = rs * (g - mg - xh * mgx);
  }
}

var<workgroup> red: array<f32, 256>;

// out[c] (+)= Σ_r A[aOff + r·ld + c], c < cols.  P: rows, cols, ld, aOff, oOff, acc
// Workgroup = 8 columns × 32 row lanes (lid = lane·8 + column).
@compute @workgroup_size(256)
fn colsum(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows = U(0u);
  let cols = U(1u);
  let ld = U(2u);
  let aOff = U(3u);
  let oOff = U(4u);
  let acc = U(5u);
  let cc = lid & 7u;
  let lane = lid >> 3u;
  let c = wid.x * 8u + cc;
  var s = 0.0;
  if (c < cols) {
    for (var r = lane; r < rows; r += 32u) {
      s += {{A}}[aOff + r * ld + c];
    }
  }
  red[lid] = s;
  workgroupBarrier();
  if (lane < 16u) {
    red[lid] += red[lid + 128u];
  }
  workgroupBarrier();
  if (lane < 8u) {
    red[lid] += red[lid + 64u];
  }
  workgroupBarrier();
  if (lane < 4u) {
    red[lid] += red[lid + 32u];
  }
  workgroupBarrier();
  if (lane < 2u) {
    red[lid] += red[lid + 16u];
  }
  workgroupBarrier();
  if (lane == 0u && c < cols) {
    var t = red[lid] + red[lid + 8u];
    if (acc != 0u) {
      t += {{OUT}}[oOff + c];
    }
    {{OUT}}[oOff + c] = t;
  }
}
