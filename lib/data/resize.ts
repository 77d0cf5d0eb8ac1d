/**
 * Bit-faithful emulation of OpenCV `cv2.resize(src, (w, h), interpolation=cv2.INTER_LINEAR)` on
 * u8 images (spec §11: every image and mask is cv2-resized to 448×448 before the centre crop).
 *
 * What OpenCV 4.x does for 8-bit INTER_LINEAR (imgproc/src/resize.cpp, `hal::resize` +
 * `resizeGeneric_`), and what this module reproduces:
 * - Half-pixel centres: `fx = (float)((dx + 0.5) * scale - 0.5)` with `scale = 1 / (dst / src)`
 *   (double), `sx = floor(fx)`, `fx -= sx` (float). No antialiasing, also when downscaling.
 * - Columns: `sx < 0` → `sx = 0, fx = 0`; `sx >= W - 1` → `sx = W - 1, fx = 0` (clamped border).
 *   Rows: the two source rows `sy`, `sy + 1` are clamped into `[0, H - 1]`; `fy` is kept.
 * - Weights in 11-bit fixed point: `a0 = cvRound((1 - f) * 2048)`, `a1 = cvRound(f * 2048)`
 *   (cvRound = round half to even on the float).
 * - Horizontal pass in int32: `t = S[sx] * a0 + S[sx + 1] * a1`.
 * - Vertical pass as OpenCV's SIMD kernel `VResizeLinearVec_32s8u` computes it (used for all
 *   output elements whose row length `W_out * channels` is a multiple of the SIMD width, which
 *   holds for 448-wide outputs):
 *   `((( t0 >> 4) * b0) >> 16) + (((t1 >> 4) * b1) >> 16)`, then `(v + 2) >> 2`, saturated to u8.
 *   OpenCV's scalar tail formula `(t0 * b0 + t1 * b1 + 2^21) >> 22` can differ from this by one
 *   grey level; it is only used for the last `W_out * channels mod 16` (SSE2) elements of a row,
 *   i.e. never for 448-wide outputs.
 * - Exact 2× downscale in both axes (`src == 2 * dst`): OpenCV switches to INTER_AREA
 *   (`resizeAreaFast`): `(a + b + c + d + 2) >> 2`. Reproduced too.
 * @module
 */

/** Round half to even on a float32 value (OpenCV `cvRound` / `saturate_cast<short>(float)`). */
function cvRound(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

interface Taps {
  i0: Int32Array;
  i1: Int32Array;
  w0: Int32Array;
  w1: Int32Array;
}

/** Source indices and 11-bit weights along one axis (`clampFrac`: zero `f` at the borders). */
function taps(src: number, dst: number, clampFrac: boolean): Taps {
  const scale = 1 / (dst / src);
  const t: Taps = {
    i0: new Int32Array(dst),
    i1: new Int32Array(dst),
    w0: new Int32Array(dst),
    w1: new Int32Array(dst),
  };
  for (let d = 0; d < dst; d++) {
    let f = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = Math.fround(f - s);
    if (clampFrac) {
      if (s < 0) {
        s = 0;
        f = 0;
      }
      if (s >= src - 1) {
        s = src - 1;
        f = 0;
      }
    }
    t.i0[d] = Math.min(Math.max(s, 0), src - 1);
    t.i1[d] = Math.min(Math.max(s + 1, 0), src - 1);
    t.w0[d] = cvRound(Math.fround(1 - f) * 2048);
    t.w1[d] = cvRound(f * 2048);
  }
  return t;
}

/**
 * Resize a u8 image like `cv2.resize(..., interpolation=cv2.INTER_LINEAR)`.
 * @param src `(H, W, C)` row-major u8 (C = `channels`, e.g. 3 for RGB, 1 for a mask).
 * @returns `(outH, outW, C)` row-major u8.
 * @throws {RangeError} when a size is not a positive integer or `src` has the wrong length.
 */
export function resizeLinearU8(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outW: number,
  outH: number,
): Uint8Array {
  for (const [k, v] of Object.entries({ width, height, channels, outW, outH })) {
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`resize: ${k} = ${v} is not > 0`);
  }
  if (src.length !== width * height * channels) {
    throw new RangeError(
      `resize: source has ${src.length} bytes; expected ${height}x${width}x${channels}`,
    );
  }
  const cn = channels;
  const out = new Uint8Array(outW * outH * cn);
  if (width === 2 * outW && height === 2 * outH) {
    // INTER_LINEAR at exactly 1/2 scale → OpenCV uses INTER_AREA (resizeAreaFast).
    const rs = width * cn;
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        for (let c = 0; c < cn; c++) {
          const s = 2 * y * rs + 2 * x * cn + c;
          out[(y * outW + x) * cn + c] =
            (src[s] + src[s + cn] + src[s + rs] + src[s + rs + cn] + 2) >>
            2;
        }
      }
    }
    return out;
  }
  const tx = taps(width, outW, true);
  const ty = taps(height, outH, false);
  const rowLen = outW * cn;
  // Horizontal pass for each source row, computed once (rows are reused by neighbouring dy).
  const hrow = new Map<number, Int32Array>();
  const hor = (sy: number): Int32Array => {
    let r = hrow.get(sy);
    if (r) return r;
    r = new Int32Array(rowLen);
    const base = sy * width * cn;
    for (let dx = 0; dx < outW; dx++) {
      const s0 = base + tx.i0[dx] * cn;
      const s1 = base + tx.i1[dx] * cn;
      const a0 = tx.w0[dx];
      const a1 = tx.w1[dx];
      for (let c = 0; c < cn; c++) r[dx * cn + c] = src[s0 + c] * a0 + src[s1 + c] * a1;
    }
    hrow.set(sy, r);
    return r;
  };
  for (let dy = 0; dy < outH; dy++) {
    const r0 = hor(ty.i0[dy]);
    const r1 = hor(ty.i1[dy]);
    const b0 = ty.w0[dy];
    const b1 = ty.w1[dy];
    const o = dy * rowLen;
    for (let i = 0; i < rowLen; i++) {
      // v_mul_hi on int16: ((t >> 4) * b) >> 16 with arithmetic shifts; then v_rshr_pack_u<2>.
      const v = (((r0[i] >> 4) * b0) >> 16) + (((r1[i] >> 4) * b1) >> 16);
      const u = (v + 2) >> 2;
      out[o + i] = u < 0 ? 0 : u > 255 ? 255 : u;
    }
    // Rows no longer needed (source rows only move forward).
    for (const k of hrow.keys()) if (k < ty.i0[dy]) hrow.delete(k);
  }
  return out;
}
