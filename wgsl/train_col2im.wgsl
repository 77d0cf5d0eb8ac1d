// col2im: the adjoint of train_im2col.wgsl. dX (n, h, w, C) (+)= Σ over the 9 taps of the col
// gradient dcol (n·h·w, 9·C) that read input pixel (y, x): tap (ky, kx) of output pixel
// (y − dil·(ky−1), x − dil·(kx−1)). Gather form (no atomics): one invocation per dX element.
// TypeScript reference: col2imRef in lib/train/gpu/conv.ts.

struct Params {
  n: u32,
  h: u32,
  w: u32,
  C: u32,
  dil: u32,
  dcolOff: u32,
  dxOff: u32,
  total: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> dcol: array<f32>;
@group(0) @binding(2) var<storage, read_write> dX: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nw: vec3<u32>) {
  let e = (wid.x + wid.y * nw.x) * 64u + li;
  if (e >= P.total) {
    return;
  }
  let ci = e % P.C;
  let r = e / P.C;
  let x = i32(r % P.w);
  let y = i32((r / P.w) % P.h);
  let b = r / (P.w * P.h);
  let d = i32(P.dil);
  let c9 = 9u * P.C;
  var s = 0.0;
  for (var t = 0u; t < 9u; t++) {
    let oy = y - d * (i32(t / 3u) - 1);
    let ox = x - d * (i32(t % 3u) - 1);
    if (oy >= 0 && oy < i32(P.h) && ox >= 0 && ox < i32(P.w)) {
      s += dcol[P.dcolOff + ((b * P.h + u32(oy)) * P.w + u32(ox)) * c9 + ci * 9u + t];
    }
  }
  let o = P.dxOff + e;
  if (P.accumulate != 0u) {
    s += dX[o];
  }
  dX[o] = s;
}
