// Training backward of the Mamba causal depthwise conv1d (forward: train/conv1d.wgsl):
//   dx[s, c] = Σ_k w[c, k] · dy[s + (K−1) − k, c]     (dy beyond the end of the sequence = 0)
//   dW[c, k] = Σ_s x[s, c] · dy[s + (K−1) − k, c]      dB[c] = Σ_s dy[s, c]
// (sums over every row s of every sequence). TypeScript reference: lib/ops/mamba.ts
// causalConv1dBackward. Record function: lib/train/gpu/mamba_ops.ts recordCausalConv1dBackward.
//
// One workgroup of 256 lanes per block of 8 channels: lane l takes channel 8·blk + l % 8 and the
// l / 8-th of 32 contiguous row chunks, walks its chunk BACKWARD in time keeping the window
// dy[s .. s+K−1] in registers (2 loads per row: x and dy), writes dx of its rows and keeps K + 1
// partial sums; the 32 chunk partials are then summed through workgroup memory. Loop back-edges
// per lane ≈ rows / 32 (1250 at 40 000 rows), far below lavapipe's 65535 limit; the K taps are
// unrolled by the generator.
//
// Operands (flat f32): x at xOff + row·ldx + c; w (C, K) at wOff + c·K + k; dy at dyOff + row·lddy
// + c; dx at dxOff + row·lddx + c (written); dW (C, K) at dwOff + c·K + k and dB (C) at dbOff + c
// (written, not accumulated).

struct Params {
  rows: u32,
  Ls: u32,
  C: u32,
  chunk: u32,
  xOff: u32,
  ldx: u32,
  wOff: u32,
  dyOff: u32,
  lddy: u32,
  dxOff: u32,
  lddx: u32,
  dwOff: u32,
  dbOff: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
{{DECLS}}

const KP1: u32 = {{K}}u + 1u;
var<workgroup> red: array<f32, 256 * ({{K}} + 1)>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x * 8u + lid % 8u;
  let part = lid / 8u;
  let inRange = c < P.C;
  let cc = min(c, P.C - 1u);
  let start = min(part * P.chunk, P.rows);
  let end = min(start + P.chunk, P.rows);
  let n = select(0u, end - start, inRange);
  let wb = P.wOff + cc * {{K}}u;
{{W}}
  // Window before the first step (row end − 1 walked first): dy[end + j], j < K − 1, when
  // end + j is in the sequence of row end − 1.
  let tl = (max(end, 1u) - 1u) % P.Ls;
{{PRELOAD}}
  var db = 0.0;
{{ACC}}
  for (var i = 0u; i < n; i++) {
    let s = end - 1u - i;
    let last = (s % P.Ls) == P.Ls - 1u;
    let xv = {{X}}[P.xOff + s * P.ldx + cc];
{{SHIFT}}
    g0 = {{DY}}[P.dyOff + s * P.lddy + cc];
    db += g0;
{{STEP}}
    {{DX}}[P.dxOff + s * P.lddx + cc] = dxv;
  }
  let rb = lid * KP1;
{{STORE}}
  red[rb + {{K}}u] = db;
  workgroupBarrier();
  if (part == 0u && inRange) {
{{SUMDECL}}
    for (var p = 0u; p < 32u; p++) {
      let pb = (p * 8u + lid) * KP1;
{{SUM}}
    }
{{WRITE}}
  }
}
