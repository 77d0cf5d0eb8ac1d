// Column sums: out[outOff + chunk·cols + c] (+)= Σ_{r in chunk} A[aOff + r·lda + c]
// (· B[bOff + r·ldb + c] when flags bit 1), over row chunks of P.R rows (workgroup y = chunk,
// lanes = columns). Long reductions run as several passes (lib/train/gpu/conv.ts recordColSum):
// chunks of ≤ 256 rows into partials, then the partials are summed the same way, so no lane
// loops more than 256 times. flags bit 0: add to the previous out.
// TypeScript reference: colSumRef in lib/train/gpu/conv.ts.

struct Params {
  rows: u32,
  cols: u32,
  aOff: u32,
  lda: u32,
  bOff: u32,
  ldb: u32,
  outOff: u32,
  flags: u32,
  R: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x * 64u + li;
  if (c >= P.cols) {
    return;
  }
  let r0 = wid.y * P.R;
  let r1 = min(r0 + P.R, P.rows);
  var s = 0.0;
  if ((P.flags & 2u) != 0u) {
    for (var r = r0; r < r1; r++) {
      s += A[P.aOff + r * P.lda + c] * B[P.bOff + r * P.ldb + c];
    }
  } else {
    for (var r = r0; r < r1; r++) {
      s += A[P.aOff + r * P.lda + c];
    }
  }
  let o = P.outOff + wid.y * P.cols + c;
  if ((P.flags & 1u) != 0u) {
    s += out[o];
  }
  out[o] = s;
}
