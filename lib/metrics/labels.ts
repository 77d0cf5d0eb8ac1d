/**
 * Label validation and the one-line warning for undefined metrics.
 * @module
 */

/**
 * Convert binary labels (0/1 numbers or booleans) to the sort payload: 0 = normal, 1 = anomalous.
 * @throws {Error} naming `what` and the index when a label is not 0, 1, false or true.
 */
export function labelPayload(labels: ArrayLike<number | boolean>, what: string): Uint32Array {
  const out = new Uint32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v === 1 || v === true) out[i] = 1;
    else if (v !== 0 && v !== false) {
      throw new Error(`${what}: label ${String(v)} at index ${i}; labels must be 0/1 or booleans`);
    }
  }
  return out;
}

/**
 * Print the single warning line for a metric that is undefined and reported as NaN.
 * @param metric The metric's name as the caller reports it (e.g. `image_auroc`).
 * @param why Why it is undefined (e.g. "only one class present in the image labels").
 */
export function warnUndefined(metric: string, why: string): void {
  console.warn(`snarm metrics: ${metric} is undefined (NaN): ${why}`);
}
