// col2im: the adjoint of train/im2col.wgsl. dX (n, h, w, C) (+)= Σ over the 9 taps of the col
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
  let r = e / P.C;
  let ci = e - r * P.C;
  let rw = r / P.w;
  let x = i32(r - rw * P.w);
  let b = rw / P.h;
  let y = i32(rw - b * P.h);
  let d = i32(P.dil);
  let h = i32(P.h);
  let w = i32(P.w);
  let c9 = 9u * P.C;
  let base = P.dcolOff + b * P.h * P.w * c9 + ci * 9u;
  var s = 0.0;
  for (var ky = 0; ky < 3; ky++) {
    let oy = y - d * (ky - 1);
    let vy = oy >= 0 && oy < h;
    let rowb = base + u32(clamp(oy, 0, h - 1)) * P.w * c9 + u32(ky * 3);
    for (var kx = 0; kx < 3; kx++) {
      let ox = x - d * (kx - 1);
      let ok = vy && ox >= 0 && ox < w;
      let v = dcol[rowb + u32(clamp(ox, 0, w - 1)) * c9 + u32(kx)];
      s += select(0.0, v, ok);
    }
  }
  let o = P.dxOff + e;
  if (P.accumulate != 0u) {
    s += dX[o];
  }
  dX[o] = s;
}
