/**
 * GPU-resident bank for the top-k search (lib/bank/search.ts): the bank uploaded once with |b|²
 * precomputed (like faiss `add`).
 * @module
 */
import { type Gpu, GpuError, withErrorScope } from "../gpu/device.ts";
import { INF, U_COPY_DST, U_STORAGE, U_UNIFORM } from "./search_common.ts";

/**
 * A bank uploaded once to the device, with |b|² precomputed (like faiss `add`). Create with
 * {@link createBankIndex}; reuse for many query batches; {@link BankIndex.destroy} frees it.
 */
export interface BankIndex {
  readonly kind: "snarm.BankIndex";
  /** Number of bank entries N. */
  readonly n: number;
  /** Feature size D. */
  readonly d: number;
  /** The host copy `(N, D)` row-major f32 (kept by reference; used for exact distances and residuals). */
  readonly data: Float32Array;
  /** `(N,)` source image id per entry (`sample_image_indices`), when given. */
  readonly entryImageIds?: Int32Array;
  /**
   * The device holding the bank, or `null` (host-only: searches run the `"native"` ONNX Runtime
   * CPU variant when onnxruntime-node loads, else the TypeScript reference).
   */
  readonly gpu: Gpu | null;
  /** Free the GPU buffers. The index must not be used afterwards. */
  destroy(): void;
}

export class BankIndexImpl implements BankIndex {
  readonly kind = "snarm.BankIndex" as const;
  /** D padded to a multiple of 4. */
  dp: number;
  /** N padded to a multiple of {@link ROW_PAD}. */
  np: number;
  bankBuf: GPUBuffer | null = null;
  /** `(np,)` |b|² (f64-accurate, rounded), +inf on padding rows. */
  norms: Float32Array;
  /** Storage copy of {@link norms} (tiled variant), created on demand. */
  normsBuf: GPUBuffer | null = null;
  /** Per broadcast plan: default record buffer. */
  records = new Map<string, GPUBuffer>();
  /** Per pipeline key: bank-window bind groups (group 1) and record bind groups (group 2). */
  bankGroups = new Map<string, GPUBindGroup[]>();
  recGroups = new Map<string, GPUBindGroup[]>();
  destroyed = false;

  constructor(
    readonly gpu: Gpu | null,
    readonly data: Float32Array,
    readonly n: number,
    readonly d: number,
    readonly entryImageIds?: Int32Array,
  ) {
    this.dp = Math.ceil(d / 4) * 4;
    this.np = Math.max(ROW_PAD, Math.ceil(n / ROW_PAD) * ROW_PAD);
    this.norms = new Float32Array(this.np).fill(INF);
    for (let j = 0; j < n; j++) {
      let s = 0;
      const o = j * d;
      for (let c = 0; c < d; c++) s += data[o + c] * data[o + c];
      this.norms[j] = s;
    }
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.bankBuf?.destroy();
    this.normsBuf?.destroy();
    for (const b of this.records.values()) b.destroy();
    this.records.clear();
    this.bankGroups.clear();
    this.recGroups.clear();
  }
}

/** Bank rows are padded to this multiple (≥ every nb·w of the broadcast kernel, multiple of 64). */
export const ROW_PAD = 256;

export function asImpl(x: BankIndex, what: string): BankIndexImpl {
  if (!(x instanceof BankIndexImpl)) {
    throw new Error(`${what}: expected a BankIndex from createBankIndex`);
  }
  if (x.destroyed) throw new Error(`${what}: the BankIndex was destroyed`);
  return x;
}

export function checkFinite(a: Float32Array, what: string): void {
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (v !== v || v === INF || v === -INF) {
      throw new Error(`bank search: ${what} has a non-finite value at flat index ${i}`);
    }
  }
}

/**
 * Upload a bank once and precompute |b|². With `gpu = null` the index only holds the host copy;
 * searches then run the `"native"` variant (ONNX Runtime CPU, lib/bank/search_native.ts) when
 * onnxruntime-node loads, else the TypeScript reference (after {@link warnFallback}).
 * @param bank `(N, D)` row-major f32 bank features (kept by reference, do not mutate).
 * @param d feature size D.
 * @param entryImageIds optional `(N,)` source image id per entry, for `allowedImageIds`.
 * @throws {Error} on a shape mismatch or non-finite values; {@link GpuError} when the device cannot
 * hold the bank (N·D·4 bytes must fit `maxBufferSize`).
 */
export async function createBankIndex(
  gpu: Gpu | null,
  bank: Float32Array,
  d: number,
  entryImageIds?: ArrayLike<number>,
): Promise<BankIndex> {
  if (!Number.isInteger(d) || d < 1) {
    throw new Error(`createBankIndex: D=${d} must be a positive integer`);
  }
  if (bank.length % d !== 0 || bank.length === 0) {
    throw new Error(
      `createBankIndex: bank has ${bank.length} values, expected (N, D=${d}) with N ≥ 1`,
    );
  }
  const n = bank.length / d;
  if (n >= 0x7fffffff) throw new Error(`createBankIndex: N=${n} too large`);
  checkFinite(bank, "bank");
  let ids: Int32Array | undefined;
  if (entryImageIds) {
    if (entryImageIds.length !== n) {
      throw new Error(
        `createBankIndex: entryImageIds has ${entryImageIds.length} entries, expected N=${n}`,
      );
    }
    ids = Int32Array.from(entryImageIds);
  }
  const idx = new BankIndexImpl(gpu, bank, n, d, ids);
  if (!gpu) return idx;
  const bytes = idx.np * idx.dp * 4;
  if (bytes > gpu.limits.maxBufferSize) {
    throw new GpuError(
      `createBankIndex: bank of ${idx.np}×${idx.dp} f32 (${bytes} bytes) exceeds maxBufferSize ${gpu.limits.maxBufferSize}`,
    );
  }
  await withErrorScope(gpu.device, "uploading the bank", () => {
    const buf = gpu.device.createBuffer({
      label: `bank ${n}x${d}`,
      size: bytes,
      usage: U_STORAGE | U_UNIFORM | U_COPY_DST,
      mappedAtCreation: true,
    });
    const dst = new Float32Array(buf.getMappedRange());
    if (idx.dp === d) dst.set(bank);
    else for (let j = 0; j < n; j++) dst.set(bank.subarray(j * d, j * d + d), j * idx.dp);
    buf.unmap();
    idx.bankBuf = buf;
  });
  return idx;
}
