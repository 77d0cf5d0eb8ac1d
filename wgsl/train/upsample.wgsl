// Bilinear upsampling of single-channel planes (n, h, w) → (n, H, W) and its backward, with the
// sampling taps of lib/ops/upsample.ts (align_corners = true by default) precomputed on
// the host into `tab` (f32): per axis (src size s, dst size D) at offset o:
//   i0[D] at o, i1[D] at o + D, frac[D] at o + 2D, lo[s] at o + 3D, hi[s] at o + 3D + s
// where [lo[i], hi[i]) is the range of destination coordinates whose taps touch source i.
// `forward`: Y[n,Y,X] = lerp_y(lerp_x(...)). `back_x`: T[n,Y,x] = Σ_X dY[n,Y,X]·wx(X,x);
// `back_y`: dX[n,y,x] = Σ_Y T[n,Y,x]·wy(Y,y) (separable gather form, no atomics; loop lengths
// are the tap ranges, ≈ 2·H/h).
// TypeScript reference: lib/ops/upsample.ts upsampleBilinearForward / Backward.

struct Params {
  n: u32,
  h: u32,
  w: u32,
  H: u32,
  W: u32,
  inOff: u32,
  outOff: u32,
  ty: u32,
  tx: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> tab: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

fn eid(li: u32, wid: vec3<u32>, nw: vec3<u32>) -> u32 {
  return (wid.x + wid.y * nw.x) * 64u + li;
}

// Weight of destination coordinate D on source i for the axis table at o (dst size Dn).
fn tapw(o: u32, Dn: u32, D: u32, i: u32) -> f32 {
  let f = tab[o + 2u * Dn + D];
  return select(0.0, 1.0 - f, u32(tab[o + D]) == i) + select(0.0, f, u32(tab[o + Dn + D]) == i);
}

@compute @workgroup_size(64)
fn forward(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nw: vec3<u32>) {
  let e = eid(li, wid, nw);
  if (e >= P.n * P.H * P.W) {
    return;
  }
  let X = e % P.W;
  let Y = (e / P.W) % P.H;
  let m = e / (P.W * P.H);
  let y0 = u32(tab[P.ty + Y]);
  let y1 = u32(tab[P.ty + P.H + Y]);
  let fy = tab[P.ty + 2u * P.H + Y];
  let x0 = u32(tab[P.tx + X]);
  let x1 = u32(tab[P.tx + P.W + X]);
  let fx = tab[P.tx + 2u * P.W + X];
  let b = P.inOff + m * P.h * P.w;
  let top = src[b + y0 * P.w + x0] * (1.0 - fx) + src[b + y0 * P.w + x1] * fx;
  let bot = src[b + y1 * P.w + x0] * (1.0 - fx) + src[b + y1 * P.w + x1] * fx;
  dst[P.outOff + e] = top * (1.0 - fy) + bot * fy;
}

// src = dY (n, H, W) → dst = T (n, H, w).
@compute @workgroup_size(64)
fn back_x(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nw: vec3<u32>) {
  let e = eid(li, wid, nw);
  if (e >= P.n * P.H * P.w) {
    return;
  }
  let x = e % P.w;
  let row = e / P.w;
  let lo = u32(tab[P.tx + 3u * P.W + x]);
  let hi = u32(tab[P.tx + 3u * P.W + P.w + x]);
  let b = P.inOff + row * P.W;
  var s = 0.0;
  for (var X = lo; X < hi; X++) {
    s += src[b + X] * tapw(P.tx, P.W, X, x);
  }
  dst[P.outOff + e] = s;
}

// src = T (n, H, w) → dst = dX (n, h, w).
@compute @workgroup_size(64)
fn back_y(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nw: vec3<u32>) {
  let e = eid(li, wid, nw);
  if (e >= P.n * P.h * P.w) {
    return;
  }
  let x = e % P.w;
  let y = (e / P.w) % P.h;
  let m = e / (P.w * P.h);
  let lo = u32(tab[P.ty + 3u * P.H + y]);
  let hi = u32(tab[P.ty + 3u * P.H + P.h + y]);
  let b = P.inOff + m * P.H * P.w + x;
  var s = 0.0;
  for (var Y = lo; Y < hi; Y++) {
    s += src[b + Y * P.w] * tapw(P.ty, P.H, Y, y);
  }
  dst[P.outOff + e] = s;
}
