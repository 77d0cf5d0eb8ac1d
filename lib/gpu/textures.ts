/**
 * Activation textures of the head pipeline: rgba32float 2-D array textures holding a
 * token-major tensor `(layers, rows, C)` with texel (x, y, layer) = channels 4x…4x+3 of row y of
 * sequence `layer`. Reading a texel costs about a quarter of four storage loads on lavapipe
 * (docs/webgpu-on-lavapipe.md), which is why GEMM-like kernels take their per-lane operand from
 * these textures.
 * @module
 */
import { type Gpu, GpuError, withErrorScope } from "./device.ts";
import { BufferUsage } from "./buffers.ts";

const TEXTURE_BINDING = 0x04, STORAGE_BINDING = 0x08, COPY_SRC = 0x01, COPY_DST = 0x02;

/** Texels per row for C channels. */
export function texelsOf(C: number): number {
  return Math.ceil(C / 4);
}

/**
 * Create an activation texture for `(layers, rows, width)` floats (`width` a multiple of 4).
 * @param storage also allow compute-shader writes (`texture_storage_2d_array<rgba32float, write>`).
 * @throws {GpuError} when a dimension exceeds the device limits.
 */
export function createActTexture(
  gpu: Gpu,
  width: number,
  rows: number,
  layers: number,
  label: string,
  storage: boolean,
): GPUTexture {
  const w = texelsOf(width);
  const lim = gpu.limits;
  if (w > lim.maxTextureDimension2D || rows > lim.maxTextureDimension2D) {
    throw new GpuError(
      `${label}: texture ${w}×${rows} exceeds maxTextureDimension2D ${lim.maxTextureDimension2D}`,
    );
  }
  if (layers > lim.maxTextureArrayLayers) {
    throw new GpuError(
      `${label}: ${layers} layers exceed maxTextureArrayLayers ${lim.maxTextureArrayLayers}`,
    );
  }
  return gpu.device.createTexture({
    label,
    size: [w, rows, layers],
    format: "rgba32float",
    dimension: "2d",
    usage: TEXTURE_BINDING | COPY_SRC | COPY_DST | (storage ? STORAGE_BINDING : 0),
  });
}

/** Upload `(layers, rows, width)` floats (width a multiple of 4) into an activation texture. */
export function writeActTexture(
  gpu: Gpu,
  tex: GPUTexture,
  data: Float32Array,
  width: number,
  rows: number,
  layers: number,
): void {
  if (width % 4 !== 0) throw new GpuError(`writeActTexture: width ${width} is not a multiple of 4`);
  if (data.length < layers * rows * width) {
    throw new GpuError(
      `writeActTexture ${tex.label}: ${data.length} values, need ${layers * rows * width}`,
    );
  }
  gpu.device.queue.writeTexture(
    { texture: tex },
    data as Float32Array<ArrayBuffer>,
    { bytesPerRow: width * 4, rowsPerImage: rows },
    [width / 4, rows, layers],
  );
}

/** Read an activation texture back as `(layers, rows, width)` floats. */
export async function readActTexture(
  gpu: Gpu,
  tex: GPUTexture,
  width: number,
  rows: number,
  layers: number,
): Promise<Float32Array> {
  return await withErrorScope(gpu.device, `reading texture ${tex.label}`, async () => {
    const w4 = width / 4;
    const bpr = Math.ceil((w4 * 16) / 256) * 256;
    const size = bpr * rows * layers;
    const staging = gpu.device.createBuffer({
      size,
      usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST,
      label: "tex staging",
    });
    const enc = gpu.device.createCommandEncoder();
    enc.copyTextureToBuffer({ texture: tex }, {
      buffer: staging,
      bytesPerRow: bpr,
      rowsPerImage: rows,
    }, [
      w4,
      rows,
      layers,
    ]);
    gpu.device.queue.submit([enc.finish()]);
    await staging.mapAsync(1);
    const raw = new Float32Array(staging.getMappedRange());
    const out = new Float32Array(layers * rows * width);
    const stride = bpr / 4;
    for (let l = 0; l < layers; l++) {
      for (let r = 0; r < rows; r++) {
        const src = (l * rows + r) * stride;
        out.set(raw.subarray(src, src + width), (l * rows + r) * width);
      }
    }
    staging.unmap();
    staging.destroy();
    return out;
  });
}
