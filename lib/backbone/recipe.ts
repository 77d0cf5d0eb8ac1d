/**
 * SNARM's patch-feature recipe (/work/shared/docs/snarm-method.md §1), backbone-agnostic:
 *
 * 1. taps arranged in groups; per group the **mean** of its layers
 *    (ViT: the token maps of blocks 1..4 and 5..8; CNN generalisation, see {@link fuseGroup});
 * 2. ViT only: drop CLS + R register tokens, reshape `(B, h·w, C)` → `(B, C, h, w)`;
 * 3. bilinear resample (PyTorch `interpolate(mode="bilinear", align_corners=False)`) to the
 *    working grid (official: 28×28 → 49×49);
 * 4. PatchCore `MeanMapper` per group: `adaptive_avg_pool1d` over channels to `pretrainDim`
 *    (official 1024);
 * 5. PatchCore `Aggregator`: concatenate the groups, `adaptive_avg_pool1d` to `targetDim`
 *    (official 512). No L2 normalisation, no positional embedding, no PCA.
 *
 * All maps here are channels-first `(B, C, h, w)` row-major f32 except the output
 * {@link FeatureGrid}, which is channels-last `(N, h, w, C)`.
 * @module
 */

import type { FeatureGrid } from "../types.ts";

/** A channels-first map `(b, c, h, w)` row-major f32. */
export interface ChannelsFirstMap {
  data: Float32Array;
  b: number;
  c: number;
  h: number;
  w: number;
}

/** First input index of output `i` of torch's adaptive pooling: `floor(i·L/out)`. */
export function poolStart(i: number, inLen: number, outLen: number): number {
  return Math.floor((i * inLen) / outLen);
}

/** One-past-last input index of output `i` of torch's adaptive pooling: `ceil((i+1)·L/out)`. */
export function poolEnd(i: number, inLen: number, outLen: number): number {
  return Math.ceil(((i + 1) * inLen) / outLen);
}

/**
 * `torch.nn.functional.adaptive_avg_pool1d` on one vector: `dst[dstOff + i]` = mean of
 * `src[srcOff + start(i) .. srcOff + end(i))` with `start = floor(i·L/out)`,
 * `end = ceil((i+1)·L/out)`, i < `outLen`. Works for down- and up-sampling (`outLen > L`).
 */
export function adaptiveAvgPool1d(
  src: ArrayLike<number>,
  srcOff: number,
  inLen: number,
  dst: { [i: number]: number },
  dstOff: number,
  outLen: number,
): void {
  for (let i = 0; i < outLen; i++) {
    const s = poolStart(i, inLen, outLen), e = poolEnd(i, inLen, outLen);
    let acc = 0;
    for (let j = s; j < e; j++) acc += src[srcOff + j];
    dst[dstOff + i] = acc / (e - s);
  }
}

/**
 * Adaptive average pooling over the channel axis of a `(B, C, h, w)` map to `(B, outC, h, w)`
 * (torch index semantics, see {@link adaptiveAvgPool1d}). Identity copy when `outC == C`.
 */
export function poolChannels(map: ChannelsFirstMap, outC: number): ChannelsFirstMap {
  const { b, c, h, w, data } = map;
  if (outC === c) return { ...map, data: data.slice() };
  const hw = h * w;
  const out = new Float32Array(b * outC * hw);
  for (let n = 0; n < b; n++) {
    for (let k = 0; k < outC; k++) {
      const s = poolStart(k, c, outC), e = poolEnd(k, c, outC), inv = 1 / (e - s);
      const dst = (n * outC + k) * hw;
      for (let p = 0; p < hw; p++) {
        let acc = 0;
        for (let j = s; j < e; j++) acc += data[(n * c + j) * hw + p];
        out[dst + p] = acc * inv;
      }
    }
  }
  return { data: out, b, c: outC, h, w };
}

function bilinearAxis(inLen: number, outLen: number) {
  // PyTorch area_pixel_compute_source_index, align_corners=False, no scale_factor given.
  const scale = inLen / outLen;
  const i0 = new Int32Array(outLen), i1 = new Int32Array(outLen), l1 = new Float64Array(outLen);
  for (let o = 0; o < outLen; o++) {
    const src = Math.max((o + 0.5) * scale - 0.5, 0);
    const a = Math.min(Math.floor(src), inLen - 1);
    i0[o] = a;
    i1[o] = a < inLen - 1 ? a + 1 : a;
    l1[o] = src - a;
  }
  return { i0, i1, l1 };
}

/**
 * Bilinear resampling of a `(B, C, h, w)` map to `(B, C, H, W)` with PyTorch
 * `F.interpolate(mode="bilinear", align_corners=False)` semantics (source coordinate
 * `(dst + 0.5)·in/out − 0.5`, clamped at 0; edge replicate). Identity when the sizes match.
 */
export function resizeMapsBilinear(
  map: ChannelsFirstMap,
  outH: number,
  outW: number,
): ChannelsFirstMap {
  const { b, c, h, w, data } = map;
  if (h === outH && w === outW) return { ...map, data: data.slice() };
  const ys = bilinearAxis(h, outH), xs = bilinearAxis(w, outW);
  const out = new Float32Array(b * c * outH * outW);
  for (let plane = 0; plane < b * c; plane++) {
    const src = plane * h * w, dst = plane * outH * outW;
    for (let y = 0; y < outH; y++) {
      const r0 = src + ys.i0[y] * w, r1 = src + ys.i1[y] * w;
      const ly = ys.l1[y], hy = 1 - ly;
      for (let x = 0; x < outW; x++) {
        const a = xs.i0[x], bb = xs.i1[x], lx = xs.l1[x], hx = 1 - lx;
        out[dst + y * outW + x] = hy * (hx * data[r0 + a] + lx * data[r0 + bb]) +
          ly * (hx * data[r1 + a] + lx * data[r1 + bb]);
      }
    }
  }
  return { data: out, b, c, h: outH, w: outW };
}

/**
 * ViT token output `(B, T, C)` → patch grid `(B, C, h, w)`: drop the first `1 + registers` tokens
 * (CLS and register tokens, snarm-method.md §1) and reshape the remaining `h·w` patch tokens
 * row-major, `h = w = sqrt(T − 1 − registers)`.
 * @throws Error when the token count is not `1 + registers + h²`.
 */
export function vitTokensToGrid(
  tokens: Float32Array,
  b: number,
  t: number,
  c: number,
  registers: number,
  what = "ViT tokens",
): ChannelsFirstMap {
  if (tokens.length !== b * t * c) {
    throw new Error(`${what}: ${tokens.length} values do not match (B, T, C) = (${b}, ${t}, ${c})`);
  }
  const patches = t - 1 - registers;
  const side = Math.round(Math.sqrt(Math.max(patches, 0)));
  if (patches <= 0 || side * side !== patches) {
    throw new Error(
      `${what}: ${t} tokens − 1 CLS − ${registers} registers = ${patches} patch tokens, ` +
        `not a square grid`,
    );
  }
  const out = new Float32Array(b * c * patches);
  for (let n = 0; n < b; n++) {
    for (let p = 0; p < patches; p++) {
      const src = (n * t + 1 + registers + p) * c;
      for (let k = 0; k < c; k++) out[(n * c + k) * patches + p] = tokens[src + k];
    }
  }
  return { data: out, b, c, h: side, w: side };
}

/**
 * Mean of a group of layer maps (snarm-method.md §1: g_A = mean(blocks 1..4), g_B = mean(5..8)).
 *
 * CNN generalisation (not in the official code, whose ViT layers all share one grid and 768
 * channels): layers are first brought to the group's largest grid (max h, max w) by bilinear
 * resampling (align_corners=False) and, when channel counts differ, adaptively average-pooled
 * over channels (torch `adaptive_avg_pool1d` semantics, as PatchCore's MeanMapper) to the group's
 * largest channel count; then averaged. For equal shapes this is exactly the official mean.
 * @throws Error when the group is empty or batch sizes differ.
 */
export function fuseGroup(layers: readonly ChannelsFirstMap[]): ChannelsFirstMap {
  if (layers.length === 0) throw new Error("fuseGroup: empty tap group");
  const b = layers[0].b;
  let h = 0, w = 0, c = 0;
  for (const l of layers) {
    if (l.b !== b) throw new Error(`fuseGroup: batch sizes differ (${b} vs ${l.b})`);
    h = Math.max(h, l.h);
    w = Math.max(w, l.w);
    c = Math.max(c, l.c);
  }
  const acc = new Float64Array(b * c * h * w);
  for (const l0 of layers) {
    let l = l0;
    if (l.h !== h || l.w !== w) l = resizeMapsBilinear(l, h, w);
    if (l.c !== c) l = poolChannels(l, c);
    for (let i = 0; i < acc.length; i++) acc[i] += l.data[i];
  }
  const out = new Float32Array(acc.length);
  const inv = 1 / layers.length;
  for (let i = 0; i < acc.length; i++) out[i] = acc[i] * inv;
  return { data: out, b, c, h, w };
}

/** Channel dims of the recipe: MeanMapper width per group and Aggregator output width. */
export interface RecipeDims {
  /** Working grid height/width after bilinear resampling (official 49). */
  gridH: number;
  gridW: number;
  /** MeanMapper output per group (official 1024). */
  pretrainDim: number;
  /** Aggregator output = feature dimension (official 512). */
  targetDim: number;
}

/**
 * Steps 3–5 of the recipe on already-fused groups: resample each `(B, C_g, h_g, w_g)` group map to
 * the working grid, MeanMapper each patch's C_g-vector to `pretrainDim`, concatenate the groups and
 * Aggregator-pool to `targetDim`.
 * @returns channels-last {@link FeatureGrid} `(B, gridH, gridW, targetDim)`.
 */
export function aggregateGroups(
  groups: readonly ChannelsFirstMap[],
  dims: RecipeDims,
): FeatureGrid {
  const { gridH, gridW, pretrainDim, targetDim } = dims;
  if (groups.length === 0) throw new Error("aggregateGroups: no groups");
  const b = groups[0].b;
  const resized = groups.map((g) => {
    if (g.b !== b) throw new Error(`aggregateGroups: batch sizes differ (${b} vs ${g.b})`);
    return resizeMapsBilinear(g, gridH, gridW);
  });
  const hw = gridH * gridW;
  const G = groups.length;
  const out = new Float32Array(b * hw * targetDim);
  const maxC = Math.max(...resized.map((g) => g.c));
  const vec = new Float32Array(maxC);
  const pre = new Float32Array(G * pretrainDim);
  for (let n = 0; n < b; n++) {
    for (let p = 0; p < hw; p++) {
      for (let g = 0; g < G; g++) {
        const m = resized[g];
        for (let k = 0; k < m.c; k++) vec[k] = m.data[(n * m.c + k) * hw + p];
        adaptiveAvgPool1d(vec, 0, m.c, pre, g * pretrainDim, pretrainDim);
      }
      adaptiveAvgPool1d(pre, 0, G * pretrainDim, out, (n * hw + p) * targetDim, targetDim);
    }
  }
  return { data: out, n: b, h: gridH, w: gridW, c: targetDim };
}

/**
 * The full recipe on per-layer maps: `layers[g][l]` is layer l of group g as `(B, C, h, w)`;
 * fuse each group ({@link fuseGroup}) then {@link aggregateGroups}.
 * @returns channels-last `(B, gridH, gridW, targetDim)` patch features.
 */
export function snarmFeatures(
  layers: readonly (readonly ChannelsFirstMap[])[],
  dims: RecipeDims,
): FeatureGrid {
  return aggregateGroups(layers.map(fuseGroup), dims);
}
