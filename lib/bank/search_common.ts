/**
 * Shared pieces of the bank top-k search kernels (lib/bank/search.ts): sentinels, WebGPU buffer
 * usage flags, the WGSL sorted-insertion generator and the kernel result readback check.
 * @module
 */
import { GpuError } from "../gpu/device.ts";
import { BufferUsage } from "../gpu/buffers.ts";

export const INF = Number.POSITIVE_INFINITY;
export const NO_INDEX = 0xffffffff;

export const U_STORAGE = BufferUsage.STORAGE,
  U_UNIFORM = BufferUsage.UNIFORM,
  U_COPY_DST = BufferUsage.COPY_DST,
  U_COPY_SRC = BufferUsage.COPY_SRC,
  U_MAP_READ = BufferUsage.MAP_READ;

/** Branch-free sorted insertion of (v, id) into ascending t0..t{k-1} / n0..n{k-1} (strict `<`). */
export function insertCode(
  k: number,
  v: string,
  id: string,
  t: string,
  n: string,
  c: string,
): string {
  const out: string[] = [];
  for (let r = 0; r < k; r++) out.push(`let ${c}${r} = ${v} < ${t}${r};`);
  for (let r = k - 1; r >= 1; r--) {
    out.push(`${t}${r} = select(${t}${r}, select(${v}, ${t}${r - 1}, ${c}${r - 1}), ${c}${r});`);
    out.push(`${n}${r} = select(${n}${r}, select(${id}, ${n}${r - 1}, ${c}${r - 1}), ${c}${r});`);
  }
  out.push(`${t}0 = select(${t}0, ${v}, ${c}0);`, `${n}0 = select(${n}0, ${id}, ${c}0);`);
  return out.join(" ");
}

export function copyIndices(
  res: Uint32Array,
  out: Int32Array,
  q0: number,
  qc: number,
  k: number,
): void {
  for (let i = 0; i < qc * k; i++) {
    const v = res[i];
    if (v === NO_INDEX) {
      throw new GpuError(
        `bank search: query ${q0 + Math.floor(i / k)} got no neighbour (kernel fault)`,
      );
    }
    out[q0 * k + i] = v;
  }
}
