// im2col of a 3×3 convolution with dilation `dil` and zero padding `dil` ("same"), channels-last
// X (n, h, w, C) → col (n·h·w, 9·C), column index ci·9 + ky·3 + kx (PyTorch weight order
// (Cout, Cin, 3, 3) flattened). One invocation per col element.
// TypeScript reference: im2colRef in lib/train/gpu/conv.ts.

struct Params {
  n: u32,
  h: u32,
  w: u32,
  C: u32,
  dil: u32,
  xOff: u32,
  colOff: u32,
  total: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> col: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nw: vec3<u32>) {
  let e = (wid.x + wid.y * nw.x) * 64u + li;
  if (e >= P.total) {
    return;
  }
  let c9 = 9u * P.C;
  let r = e / c9;
  let cc = e % c9;
  let ci = cc / 9u;
  let t = cc % 9u;
  let x = i32(r % P.w);
  let y = i32((r / P.w) % P.h);
  let b = r / (P.w * P.h);
  let d = i32(P.dil);
  let sy = y + d * (i32(t / 3u) - 1);
  let sx = x + d * (i32(t % 3u) - 1);
  var v = 0.0;
  if (sy >= 0 && sy < i32(P.h) && sx >= 0 && sx < i32(P.w)) {
    v = X[P.xOff + ((b * P.h + u32(sy)) * P.w + u32(sx)) * P.C + ci];
  }
  col[P.colOff + e] = v;
}
