/**
 * Ground-truth regions for AUPRO: connected components of each image's mask, **8-connectivity**
 * (pixels touching at a corner belong to the same region), labelled per image so that a region
 * never spans two images.
 *
 * Source: MVTec AD's PRO definition, `scipy.ndimage.label(mask, structure=np.ones((3,3)))`
 * (`shared/fixtures/metrics/README.md`, AUPRO step 1; `snarm-method.md` §9, "8-connectivity per
 * image"). Region ids follow scipy's raster order (first pixel in row-major order), numbered
 * globally over the images in order.
 * @module
 */

/** `[N, H, W]`: images, rows, columns. */
export type MapShape = readonly [number, number, number];

/** Connected GT regions of N masks. */
export interface RegionLabels {
  /** `(N, H, W)` row-major: 0 for a normal pixel, else the 1-based global id of its region. */
  labels: Uint32Array;
  /** Number of regions R over all images. */
  nRegions: number;
  /** Length R + 1: `sizes[r]` = pixel count |r| of region r; `sizes[0]` = number of normal pixels. */
  sizes: Float64Array;
  /** Length N: regions in each image. */
  regionsPerImage: Uint32Array;
}

/**
 * Check that `shape` is `[N, H, W]` of positive integers and that `length` = N·H·W.
 * @throws {Error} naming `what` otherwise.
 */
export function checkShape(shape: MapShape, length: number, what: string): void {
  if (
    !Array.isArray(shape) || shape.length !== 3 ||
    !shape.every((d) => Number.isInteger(d) && d > 0)
  ) {
    throw new Error(`${what}: shape must be [N, H, W] of positive integers, got ${String(shape)}`);
  }
  const [n, h, w] = shape;
  if (n * h * w !== length) {
    throw new Error(
      `${what}: expected N*H*W = ${n}*${h}*${w} = ${n * h * w} values for shape [${shape}], ` +
        `got ${length}`,
    );
  }
}

/** Region statistics returned by {@link forEachRegionPixel}. */
export interface RegionStats {
  /** Number of regions R over all images. */
  nRegions: number;
  /** Length R + 1: `sizes[r]` = |r|; `sizes[0]` = number of normal pixels. */
  sizes: Float64Array;
  /** Length N: regions in each image. */
  regionsPerImage: Uint32Array;
}

/**
 * Visit every anomalous pixel with the 1-based global id of its 8-connected region (breadth-first
 * flood fill per image, regions numbered in raster order of their first pixel, like scipy).
 * Working memory: two H×W scratch images, reused across images.
 *
 * @param masks `(N, H, W)` row-major `Uint8Array`, 0 = normal, 1 = anomalous.
 * @param shape `[N, H, W]`.
 * @param visit Called once per anomalous pixel with its flat index into `masks` and its region id.
 * @throws {Error} when the length does not match the shape or a mask value is not 0 or 1.
 */
export function forEachRegionPixel(
  masks: Uint8Array,
  shape: MapShape,
  visit: (index: number, region: number) => void,
): RegionStats {
  checkShape(shape, masks.length, "pixelMasks");
  const [n, h, w] = shape;
  const hw = h * w;
  const lab = new Int32Array(hw), queue = new Int32Array(hw);
  const sizes: number[] = [0];
  const regionsPerImage = new Uint32Array(n);
  let nNormal = 0, nRegions = 0;
  for (let img = 0; img < n; img++) {
    const base = img * hw;
    let tail = 0;
    for (let p = 0; p < hw; p++) {
      const m = masks[base + p];
      if (m === 0) {
        nNormal++;
        continue;
      }
      if (m !== 1) {
        throw new Error(
          `pixelMasks: value ${m} at index ${base + p} (image ${img}); masks must be 0/1`,
        );
      }
      if (lab[p] !== 0) continue;
      const id = ++nRegions;
      const head0 = tail;
      lab[p] = id;
      queue[tail++] = p;
      for (let head = head0; head < tail; head++) {
        const q = queue[head];
        visit(base + q, id);
        const y = (q / w) | 0, x = q - y * w;
        const y0 = y > 0 ? y - 1 : 0, y1 = y < h - 1 ? y + 1 : y;
        const x0 = x > 0 ? x - 1 : 0, x1 = x < w - 1 ? x + 1 : x;
        for (let yy = y0; yy <= y1; yy++) {
          for (let xx = x0; xx <= x1; xx++) {
            const r = yy * w + xx;
            if (masks[base + r] !== 0 && lab[r] === 0) {
              lab[r] = id;
              queue[tail++] = r;
            }
          }
        }
      }
      sizes.push(tail - head0);
      regionsPerImage[img]++;
    }
    for (let i = 0; i < tail; i++) lab[queue[i]] = 0; // reset the scratch for the next image
  }
  sizes[0] = nNormal;
  return { nRegions, sizes: Float64Array.from(sizes), regionsPerImage };
}

/**
 * Label the 8-connected anomalous regions of each mask into a full `(N, H, W)` label image.
 *
 * @param masks `(N, H, W)` row-major `Uint8Array`, 0 = normal, 1 = anomalous.
 * @param shape `[N, H, W]`.
 * @throws {Error} when the length does not match the shape or a mask value is not 0 or 1.
 */
export function labelRegions(masks: Uint8Array, shape: MapShape): RegionLabels {
  const labels = new Uint32Array(masks.length);
  const stats = forEachRegionPixel(masks, shape, (i, r) => {
    labels[i] = r;
  });
  return { labels, ...stats };
}
