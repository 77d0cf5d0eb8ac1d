/**
 * Buffer helpers: upload, readback, and chunking of arrays larger than
 * `maxStorageBufferBindingSize` (128 MiB on lavapipe).
 * @module
 */
import { type Gpu, GpuError, withErrorScope } from "./device.ts";

/** Any typed array whose buffer is a plain ArrayBuffer (what `writeBuffer` accepts under TS 6). */
export type GpuArray =
  | Float32Array<ArrayBuffer>
  | Uint32Array<ArrayBuffer>
  | Int32Array<ArrayBuffer>
  | Uint16Array<ArrayBuffer>;

/** `GPUBufferUsage` flags, as numbers (the global is absent where WebGPU is). */
export const BufferUsage = {
  MAP_READ: 0x01,
  COPY_SRC: 0x04,
  COPY_DST: 0x08,
  UNIFORM: 0x40,
  STORAGE: 0x80,
} as const;

/** `GPUTextureUsage` flags, as numbers. */
export const TextureUsage = {
  COPY_SRC: 0x01,
  COPY_DST: 0x02,
  TEXTURE_BINDING: 0x04,
  STORAGE_BINDING: 0x08,
} as const;

const { STORAGE, COPY_SRC, COPY_DST, MAP_READ, UNIFORM } = BufferUsage;

function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/**
 * Create a storage buffer holding `data` (or `byteLength` zero bytes).
 * @throws {GpuError} when the size exceeds the device's `maxBufferSize`.
 */
export function createStorage(
  gpu: Gpu,
  data: GpuArray | number,
  label = "storage",
  extraUsage = 0,
): GPUBuffer {
  const byteLength = typeof data === "number" ? data : data.byteLength;
  const size = Math.max(16, align4(byteLength));
  if (size > gpu.limits.maxBufferSize) {
    throw new GpuError(
      `${label}: ${size} bytes exceeds maxBufferSize ${gpu.limits.maxBufferSize}; chunk it`,
    );
  }
  const buf = gpu.device.createBuffer({
    label,
    size,
    usage: STORAGE | COPY_SRC | COPY_DST | extraUsage,
    mappedAtCreation: typeof data !== "number",
  });
  if (typeof data !== "number") {
    const dst = new Uint8Array(buf.getMappedRange());
    dst.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buf.unmap();
  }
  return buf;
}

/** Create a uniform buffer from 32-bit words (u32 or f32 views of the same bytes). */
export function createUniform(
  gpu: Gpu,
  words: Uint32Array<ArrayBuffer>,
  label = "params",
): GPUBuffer {
  const size = Math.max(16, Math.ceil(words.byteLength / 16) * 16);
  const buf = gpu.device.createBuffer({ label, size, usage: UNIFORM | COPY_DST });
  gpu.device.queue.writeBuffer(buf, 0, words);
  return buf;
}

/**
 * Copy `byteLength` bytes of `src` (from `offset`) back to the CPU.
 * @throws {GpuError} when mapping fails or the device is lost.
 */
export async function readBuffer(
  gpu: Gpu,
  src: GPUBuffer,
  byteLength: number,
  offset = 0,
): Promise<ArrayBuffer> {
  return await withErrorScope(gpu.device, `reading back ${src.label}`, async () => {
    const size = align4(byteLength);
    const staging = gpu.device.createBuffer({ size, usage: MAP_READ | COPY_DST, label: "staging" });
    const enc = gpu.device.createCommandEncoder();
    enc.copyBufferToBuffer(src, offset, staging, 0, size);
    gpu.device.queue.submit([enc.finish()]);
    await staging.mapAsync(1 /* GPUMapMode.READ */);
    const out = staging.getMappedRange().slice(0, byteLength);
    staging.unmap();
    staging.destroy();
    return out;
  });
}

/** Read back a buffer as f32. */
export async function readF32(gpu: Gpu, src: GPUBuffer, count: number): Promise<Float32Array> {
  return new Float32Array(await readBuffer(gpu, src, count * 4));
}

/** Read back a buffer as u32. */
export async function readU32(gpu: Gpu, src: GPUBuffer, count: number): Promise<Uint32Array> {
  return new Uint32Array(await readBuffer(gpu, src, count * 4));
}

/**
 * Split `rows` rows of `rowBytes` bytes into contiguous row ranges whose byte size stays at or
 * below `maxBytes` (default: the device's `maxStorageBufferBindingSize`). Used to bind a bank or
 * feature matrix larger than one binding allows.
 * @returns `[start, end)` row ranges covering `0..rows`.
 * @throws {GpuError} when a single row is larger than the limit.
 */
export function chunkRows(
  rows: number,
  rowBytes: number,
  maxBytes: number,
  multiple = 1,
): Array<[number, number]> {
  if (rowBytes > maxBytes) {
    throw new GpuError(`one row of ${rowBytes} bytes exceeds the binding limit ${maxBytes}`);
  }
  let per = Math.floor(maxBytes / rowBytes);
  per = Math.max(multiple, per - (per % multiple));
  const out: Array<[number, number]> = [];
  for (let s = 0; s < rows; s += per) out.push([s, Math.min(rows, s + per)]);
  if (rows === 0) out.push([0, 0]);
  return out;
}

/** Submit one encoder's work and wait until the queue is idle, surfacing errors. */
export async function submitAndWait(
  gpu: Gpu,
  what: string,
  encode: (enc: GPUCommandEncoder) => void,
): Promise<void> {
  await withErrorScope(gpu.device, what, async () => {
    const enc = gpu.device.createCommandEncoder({ label: what });
    encode(enc);
    gpu.device.queue.submit([enc.finish()]);
    await gpu.device.queue.onSubmittedWorkDone();
  });
}
