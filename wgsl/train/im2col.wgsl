// im2col of a 3×3 convolution with dilation `dil` and zero padding `dil` ("same"), channels-last
// X (n, h, w, C) → col (n·h·w, 9·C), column index ci·9 + ky·3 + kx (PyTorch weight order
// (Cout, Cin, 3, 3) flattened). One invocation per (pixel, channel): it reads the 9 taps of its
// channel (clamped address + select, no branches) and writes 9 consecutive col elements; lanes
// run over consecutive channels, so the X reads are contiguous. P.total = n·h·w·C invocations.
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
  let r = e / P.C;
  let ci = e - r * P.C;
  let rw = r / P.w;
  let x = i32(r - rw * P.w);
  let b = rw / P.h;
  let y = i32(rw - b * P.h);
  let d = i32(P.dil);
  let h = i32(P.h);
  let w = i32(P.w);
  let base = P.xOff + b * P.h * P.w * P.C + ci;
  let ob = P.colOff + r * 9u * P.C + ci * 9u;
  for (var ky = 0; ky < 3; ky++) {
    let sy = y + d * (ky - 1);
    let vy = sy >= 0 && sy < h;
    let rowb = base + u32(clamp(sy, 0, h - 1)) * P.w * P.C;
    for (var kx = 0; kx < 3; kx++) {
      let sx = x + d * (kx - 1);
      let ok = vy && sx >= 0 && sx < w;
      let v = X[rowb + u32(clamp(sx, 0, w - 1)) * P.C];
      col[ob + u32(ky * 3 + kx)] = select(0.0, v, ok);
    }
  }
}
