/**
 * Helpers for the official-SNARM fixtures (`../shared/fixtures/snarm_official/`) shared by the
 * head and training tests.
 * @module
 */
import type { SafeTensors } from "../lib/io/safetensors.ts";

/**
 * Z = [P(r) ‖ S_enc] from a fixture's X `(B, 2C, h, w)` and S_enc `(B, C, h, w)` (P =
 * concat_abs_square, spec §4: pair averages of |r| and r²), `(B, 2C, h, w)`.
 */
export function fixtureZ(io: SafeTensors): Float32Array {
  const X = io.tensors.get("X")!.data as Float32Array;
  const S = io.tensors.get("S_enc")!.data as Float32Array;
  const [B, C2, h, w] = io.tensors.get("X")!.shape;
  const C = C2 / 2, L = h * w;
  const Z = new Float32Array(B * C2 * L);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < C / 2; j++) {
      for (let p = 0; p < L; p++) {
        const a = X[(b * C2 + 2 * j) * L + p], c = X[(b * C2 + 2 * j + 1) * L + p];
        Z[(b * C2 + j) * L + p] = (Math.abs(a) + Math.abs(c)) / 2;
        Z[(b * C2 + C / 2 + j) * L + p] = (a * a + c * c) / 2;
      }
    }
    Z.set(S.subarray(b * C * L, (b + 1) * C * L), (b * C2 + C) * L);
  }
  return Z;
}
