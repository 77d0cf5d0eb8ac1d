/**
 * Bilinear upsampling of single-channel planes for the training step (spec §6 "Outputs": each
 * logit map is upsampled with align_corners = true to the image size) and its backward.
 * Sampling is exactly lib/ops/upsample.ts (the TypeScript reference): source coordinate
 * s = D·(n − 1)/(N − 1) (0 when N = 1), i0 = min(⌊s⌋, n − 1), i1 = min(i0 + 1, n − 1), weight
 * s − i0. Kernel: `wgsl/train/upsample.wgsl` (taps precomputed on the host in float64, stored as
 * f32 in a small per-sequence table tensor).
 * @module
 */
import type { KernelSequence, Ref, Tensor } from "./graph.ts";
import { grid2d } from "./graph.ts";
import { checkDims, checkRef } from "./check.ts";
import { scratchTensor } from "./gemm.ts";

/** Arguments of {@link recordUpsampleBilinear}. */
export interface UpsampleArgs {
  /** Input planes `(n, h, w)`. */
  X: Ref;
  n: number;
  h: number;
  w: number;
  H: number;
  W: number;
  /** Output planes `(n, H, W)` (written). */
  Y: Ref;
}

/** Arguments of {@link recordUpsampleBilinearBackward}. */
export interface UpsampleBackwardArgs {
  /** Output gradient `(n, H, W)`. */
  dY: Ref;
  n: number;
  h: number;
  w: number;
  H: number;
  W: number;
  /** Input gradient `(n, h, w)` (written). */
  dX: Ref;
}

/** Taps of one axis (source size s → destination size D): i0, i1, frac (D each), lo, hi (s each). */
function axisTable(s: number, D: number): Float32Array {
  const t = new Float32Array(3 * D + 2 * s);
  const lo = new Array<number>(s).fill(Infinity), hi = new Array<number>(s).fill(-1);
  for (let d = 0; d < D; d++) {
    const c = D > 1 ? d * (s - 1) / (D - 1) : 0;
    const i = Math.min(Math.floor(c), s - 1);
    const i1 = Math.min(i + 1, s - 1);
    t[d] = i;
    t[D + d] = i1;
    t[2 * D + d] = c - i;
    for (const k of [i, i1]) {
      lo[k] = Math.min(lo[k], d);
      hi[k] = Math.max(hi[k], d + 1);
    }
  }
  for (let k = 0; k < s; k++) {
    t[3 * D + k] = hi[k] < 0 ? 0 : lo[k];
    t[3 * D + s + k] = hi[k] < 0 ? 0 : hi[k];
  }
  return t;
}

const tables = new WeakMap<KernelSequence, Map<string, Tensor>>();

function tapTable(seq: KernelSequence, h: number, w: number, H: number, W: number): Tensor {
  let m = tables.get(seq);
  if (!m) tables.set(seq, m = new Map());
  const key = `${h},${w},${H},${W}`;
  let t = m.get(key);
  if (!t) {
    const ty = axisTable(h, H), tx = axisTable(w, W);
    const all = new Float32Array(ty.length + tx.length);
    all.set(ty);
    all.set(tx, ty.length);
    t = seq.tensor(all, `upsample taps ${key}`);
    m.set(key, t);
  }
  return t;
}

function check(n: number, h: number, w: number, H: number, W: number, what: string): void {
  checkDims(what, { n, h, w, H, W });
  // Loop lengths of the backward are the tap ranges (≤ about 2·H/h + 2 ≤ H): stay far below
  // lavapipe's 65535 loop limit.
  if (H > 30000 || W > 30000) throw new Error(`${what}: output ${H}×${W} too large`);
}

/**
 * Record Y = bilinear upsampling (align_corners = true) of n planes `(n, h, w)` → `(n, H, W)`.
 * @throws {Error} on bad sizes or operands too short.
 */
export async function recordUpsampleBilinear(
  seq: KernelSequence,
  a: UpsampleArgs,
): Promise<void> {
  const { n, h, w, H, W } = a;
  const what = "recordUpsampleBilinear";
  check(n, h, w, H, W, what);
  checkRef(`${what}: X`, a.X, n * h * w);
  checkRef(`${what}: Y`, a.Y, n * H * W);
  if (a.X.t === a.Y.t) throw new Error(`${what}: X and Y must be different tensors`);
  const tab = tapTable(seq, h, w, H, W);
  const total = n * H * W;
  await seq.dispatch({
    shader: "train/upsample.wgsl",
    entry: "forward",
    params: [n, h, w, H, W, a.X.off ?? 0, a.Y.off ?? 0, 0, 3 * H + 2 * h],
    bindings: [tab, a.X.t, a.Y.t],
    workgroups: grid2d(Math.ceil(total / 64)),
    label: `upsample ${n}×${h}×${w} → ${H}×${W}`,
  });
}

/**
 * Record the VJP of {@link recordUpsampleBilinear}: dX `(n, h, w)` (written) from dY `(n, H, W)`,
 * as two separable gather passes through a per-sequence scratch `(n, H, w)`.
 * @throws {Error} on bad sizes or operands too short.
 */
export async function recordUpsampleBilinearBackward(
  seq: KernelSequence,
  a: UpsampleBackwardArgs,
): Promise<void> {
  const { n, h, w, H, W } = a;
  const what = "recordUpsampleBilinearBackward";
  check(n, h, w, H, W, what);
  checkRef(`${what}: dY`, a.dY, n * H * W);
  checkRef(`${what}: dX`, a.dX, n * h * w);
  if (a.dX.t === a.dY.t) throw new Error(`${what}: dY and dX must be different tensors`);
  const tab = tapTable(seq, h, w, H, W);
  const T = scratchTensor(seq, "upsample.T", n * H * w);
  const ty = 0, tx = 3 * H + 2 * h;
  await seq.dispatch({
    shader: "train/upsample.wgsl",
    entry: "back_x",
    params: [n, h, w, H, W, a.dY.off ?? 0, 0, ty, tx],
    bindings: [tab, a.dY.t, T],
    workgroups: grid2d(Math.ceil((n * H * w) / 64)),
    label: `upsample backward x ${n}×${H}×${W} → ${w}`,
  });
  await seq.dispatch({
    shader: "train/upsample.wgsl",
    entry: "back_y",
    params: [n, h, w, H, W, 0, a.dX.off ?? 0, ty, tx],
    bindings: [tab, T, a.dX.t],
    workgroups: grid2d(Math.ceil((n * h * w) / 64)),
    label: `upsample backward y ${n}×${H} → ${h}×${w}`,
  });
}
