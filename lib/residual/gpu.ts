/**
 * WebGPU residual fusion (spec §4–5): WGSL kernels for the encoding, the unary 1×1 conv +
 * sigmoid + waypoint (`residual_encode.wgsl` `encode_r`), the intra nearest-reference search
 * (`residual_nn.wgsl`) and s = f[nn] − f with its encoding (`encode_s`). On the CPU, between the
 * dispatches: the top-K selection of the smallest waypoints (L values per image, a sort), the
 * layout of the search inputs (query texture, compact reference rows: copies only) and the
 * float64 recheck of near-tied queries (typically a handful per image).
 * @module
 */
import {
  createStorage,
  createUniform,
  getPipeline,
  type Gpu,
  GpuError,
  loadWgsl,
  readBuffer,
  submitAndWait,
  tryGetGpu,
  warnFallback,
} from "../gpu/mod.ts";
import { selectReferences } from "./encode.ts";
import { featuresChannelsLast, nearestReferenceExact } from "./nearest.ts";
import {
  generateNnKernel,
  nearTieTolerance,
  nnKey,
  planNnSearch,
  queryTexels,
} from "./nn_kernel.ts";
import { fuseResidualsRef } from "./reference.ts";
import { type FusionOptions, type FusionOut, RESIDUAL_METHODS } from "./types.ts";
import { checkFusionInput, type FusionShape } from "./validate.ts";

const UNIFORM = 0x40; // GPUBufferUsage.UNIFORM
const NONE = 0xffffffff;
const INF_BITS = 0x7f800000;
/** Byte stride of the per-dispatch parameter records (minUniformBufferOffsetAlignment). */
const PARAM_STRIDE = 256;

/**
 * Residual fusion on the WebGPU device; falls back to {@link fuseResidualsRef} after
 * `warnFallback("residual fusion")` when no adapter exists. Results equal the reference: the
 * encodings bit-exactly, unary/waypoint to f32 rounding of the sums, the reference set and the
 * nearest references exactly (near-ties are rechecked in float64 with the reference's code).
 *
 * @param X `(B, 2C, h, w)` channels-first row-major f32: channels [0, C) = signed inter-residual
 *   r, channels [C, 2C) = patch features f.
 * @param unaryWeight `(Cp)` f32 unary 1×1 conv weight (`simple_predictor.weight`); uploaded once
 *   per device and re-uploaded only when its contents change.
 * @param unaryBias the conv bias (`simple_predictor.bias`).
 * @param opts `ratio` (K = round(ratio·h·w)) and `method` (the encoding P).
 * @returns {@link FusionOut}; shapes in its field docs.
 * @throws {Error} naming `X`, `unaryWeight`, `unaryBias`, `ratio` or `method` on bad input;
 *   {@link GpuError} on a WebGPU failure.
 */
export async function fuseResiduals(
  X: Float32Array,
  B: number,
  h: number,
  w: number,
  unaryWeight: Float32Array,
  unaryBias: number,
  opts: FusionOptions,
): Promise<FusionOut> {
  const shape = checkFusionInput(X, B, h, w, unaryWeight, unaryBias, opts);
  const gpu = await tryGetGpu();
  if (!gpu) {
    warnFallback("residual fusion");
    return fuseResidualsRef(X, B, h, w, unaryWeight, unaryBias, opts);
  }
  return await fuseOnGpu(gpu, X, shape, unaryWeight, unaryBias, opts);
}

interface WeightEntry {
  copy: Float32Array;
  buf: GPUBuffer;
}
const weightCache = new WeakMap<GPUDevice, WeakMap<Float32Array, WeightEntry>>();

/** The device copy of the unary weight, uploaded once per (device, array) and on change. */
function weightBuffer(gpu: Gpu, weight: Float32Array): GPUBuffer {
  let m = weightCache.get(gpu.device);
  if (!m) weightCache.set(gpu.device, m = new WeakMap());
  const e = m.get(weight);
  if (e && e.copy.length === weight.length && e.copy.every((v, i) => Object.is(v, weight[i]))) {
    return e.buf;
  }
  e?.buf.destroy();
  const copy = new Float32Array(weight);
  const buf = createStorage(gpu, copy, "residual unary weight");
  m.set(weight, { copy, buf });
  return buf;
}

function bindGroup(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  entries: Array<[number, GPUBuffer, number?, number?]>,
  views: Array<[number, GPUTextureView]> = [],
): GPUBindGroup {
  return gpu.device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      ...entries.map(([binding, buffer, offset, size]) => ({
        binding,
        resource: { buffer, offset: offset ?? 0, size },
      })),
      ...views.map(([binding, resource]) => ({ binding, resource })),
    ],
  });
}

async function fuseOnGpu(
  gpu: Gpu,
  X: Float32Array,
  shape: FusionShape,
  unaryWeight: Float32Array,
  unaryBias: number,
  opts: FusionOptions,
): Promise<FusionOut> {
  const { B, C, L, K } = shape;
  const cfg = planNnSearch(C, L, K);
  const methodId = RESIDUAL_METHODS.indexOf(opts.method);
  const encSrc = await loadWgsl("residual_encode.wgsl");
  const encKey = `residual_encode:method=${methodId}`;
  const [encR, encS] = await Promise.all([
    getPipeline(gpu, encKey, encSrc, "encode_r", { METHOD: methodId }),
    getPipeline(gpu, encKey, encSrc, "encode_s", { METHOD: methodId }),
  ]);
  const nnCode = generateNnKernel(await loadWgsl("residual_nn.wgsl"), cfg);
  const nnPipe = await getPipeline(gpu, nnKey(cfg), nnCode);
  const wBuf = weightBuffer(gpu, unaryWeight);

  const unary = new Float32Array(B * L);
  const waypoint = new Float32Array(B * L);
  const refMask = new Uint8Array(B * L);
  const refIndices = new Int32Array(B * K);
  const intraNn = new Int32Array(B * L);
  const intraResidual = new Float32Array(B * C * L);
  const Z = new Float32Array(B * 2 * C * L);

  // Images per chunk: X and Z of a chunk must each fit one storage binding.
  const imageBytes = 2 * C * L * 4;
  const perChunk = Math.min(
    Math.floor(gpu.limits.maxStorageBufferBindingSize / imageBytes),
    // The query texture holds QR queries per row, at most maxTextureDimension2D rows.
    Math.floor(gpu.limits.maxTextureDimension2D * cfg.QR / L),
    // The encode kernels run one invocation per (image, position) in 64-wide workgroups.
    Math.floor(gpu.limits.maxComputeWorkgroupsPerDimension * 64 / L),
  );
  if (perChunk < 1) {
    throw new GpuError(
      `X: one image (2C=${2 * C}, L=${L}, ${imageBytes} bytes) exceeds this device's limits ` +
        `(maxStorageBufferBindingSize ${gpu.limits.maxStorageBufferBindingSize}, ` +
        `maxTextureDimension2D ${gpu.limits.maxTextureDimension2D}); use fuseResidualsRef`,
    );
  }
  for (let b0 = 0; b0 < B; b0 += perChunk) {
    const Bc = Math.min(perChunk, B - b0);
    const xc = X.subarray(b0 * 2 * C * L, (b0 + Bc) * 2 * C * L) as Float32Array<ArrayBuffer>;
    const bufs: GPUBuffer[] = [];
    const textures: GPUTexture[] = [];
    const keep = <T extends GPUBuffer>(b: T): T => (bufs.push(b), b);
    try {
      const xBuf = keep(createStorage(gpu, xc, "residual X"));
      const zBuf = keep(createStorage(gpu, Bc * 2 * C * L * 4, "residual Z"));
      const navBuf = keep(createStorage(gpu, 2 * Bc * L * 4, "residual unary+waypoint"));
      const pw = new Uint32Array([Bc, C, L, 0]);
      new Float32Array(pw.buffer)[3] = unaryBias;
      const params = keep(createUniform(gpu, pw, "residual params"));
      const groups = Math.ceil(Bc * L / 64);

      // 1. R = P(r), unary, waypoint.
      const bgR = bindGroup(gpu, encR, [[0, xBuf], [1, params], [2, zBuf], [3, wBuf], [4, navBuf]]);
      await submitAndWait(gpu, "residual encode_r", (enc) => {
        const pass = enc.beginComputePass();
        pass.setPipeline(encR);
        pass.setBindGroup(0, bgR);
        pass.dispatchWorkgroups(groups);
        pass.end();
      });
      const nav = new Float32Array(await readBuffer(gpu, navBuf, 2 * Bc * L * 4));
      unary.set(nav.subarray(0, Bc * L), b0 * L);
      const wp = nav.subarray(Bc * L, 2 * Bc * L);
      waypoint.set(wp, b0 * L);

      // 2. Top-K smallest waypoints (CPU).
      const sel = selectReferences(wp, Bc, L, K);
      refMask.set(sel.refMask, b0 * L);
      refIndices.set(sel.refIndices, b0 * K);

      // 3. Nearest reference (GPU, f32) with the top-2 distances.
      const { Kpad, S4, NR, W, dispatches, qStride } = cfg;
      const qt = queryTexels(X, b0, Bc, C, L, cfg);
      const qTex = gpu.device.createTexture({
        label: "residual query features",
        size: [qt.width, qt.height],
        format: "rgba32float",
        usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
      });
      textures.push(qTex);
      gpu.device.queue.writeTexture(
        { texture: qTex },
        qt.data,
        { bytesPerRow: qt.width * 16, rowsPerImage: qt.height },
        [qt.width, qt.height],
      );
      const qView = qTex.createView();
      const refPos = new Uint32Array(Bc * Kpad).fill(NONE);
      const refRows = new Float32Array(Bc * Kpad * S4 * 4);
      for (let b = 0; b < Bc; b++) {
        const fo = ((b0 + b) * 2 * C + C) * L;
        for (let k = 0; k < K; k++) {
          const p = sel.refSorted[b * K + k];
          refPos[b * Kpad + k] = p;
          const ro = (b * Kpad + k) * S4 * 4;
          for (let c = 0; c < C; c++) refRows[ro + c] = X[fo + c * L + p];
        }
      }
      const refPosBuf = keep(createStorage(gpu, refPos, "residual reference positions"));
      const refBuf = keep(createStorage(gpu, refRows, "residual reference features", UNIFORM));
      const state = new Uint32Array(Bc * L * 4);
      for (let i = 0; i < Bc * L; i++) {
        state[4 * i] = INF_BITS;
        state[4 * i + 1] = NONE;
        state[4 * i + 2] = INF_BITS;
      }
      const stateBuf = keep(createStorage(gpu, state, "residual nn state"));
      const nd = Bc * dispatches;
      const rec = new Uint32Array(nd * PARAM_STRIDE / 4);
      for (let b = 0; b < Bc; b++) {
        for (let d = 0; d < dispatches; d++) {
          rec.set(
            [L, b, qStride, d * W * NR, Kpad, 0, 0, 0],
            (b * dispatches + d) * PARAM_STRIDE / 4,
          );
        }
      }
      const nnParams = keep(createUniform(gpu, rec, "residual nn params"));
      const windowBytes = NR * S4 * 16;
      const bgs: GPUBindGroup[] = [];
      for (let b = 0; b < Bc; b++) {
        for (let d = 0; d < dispatches; d++) {
          const entries: Array<[number, GPUBuffer, number?, number?]> = [
            [1, refPosBuf],
            [2, stateBuf],
            [3, nnParams, (b * dispatches + d) * PARAM_STRIDE, 32],
          ];
          for (let w = 0; w < W; w++) {
            const off = (b * Kpad + d * W * NR + w * NR) * S4 * 16;
            entries.push([4 + w, refBuf, off, windowBytes]);
          }
          bgs.push(bindGroup(gpu, nnPipe, entries, [[0, qView]]));
        }
      }
      await submitAndWait(gpu, "residual nearest-reference search", (enc) => {
        const pass = enc.beginComputePass();
        pass.setPipeline(nnPipe);
        for (const bg of bgs) {
          pass.setBindGroup(0, bg);
          pass.dispatchWorkgroups(qStride / cfg.WG);
        }
        pass.end();
      });
      const st = new Uint32Array(await readBuffer(gpu, stateBuf, Bc * L * 16));
      const stf = new Float32Array(st.buffer);
      const tol = nearTieTolerance(cfg.C4);
      const nnc = new Uint32Array(Bc * L);
      for (let b = 0; b < Bc; b++) {
        let f: Float64Array | null = null;
        const refs = sel.refSorted.subarray(b * K, (b + 1) * K);
        for (let p = 0; p < L; p++) {
          const i = b * L + p;
          const d1 = stf[4 * i], i1 = st[4 * i + 1], d2 = stf[4 * i + 2];
          const unique = i1 !== NONE && (d2 === Infinity || d2 - d1 > tol * d2);
          let nn = i1;
          if (!unique) {
            f ??= featuresChannelsLast(X, b0 + b, C, L);
            nn = nearestReferenceExact(f, C, p, refs);
          }
          nnc[i] = nn;
          intraNn[(b0 + b) * L + p] = nn;
        }
      }

      // 4. s = f[nn] − f and P(s).
      const nnBuf = keep(createStorage(gpu, nnc, "residual nn"));
      const sBuf = keep(createStorage(gpu, Bc * C * L * 4, "residual intra-residual"));
      const bgS = bindGroup(gpu, encS, [[0, xBuf], [1, params], [2, zBuf], [5, nnBuf], [6, sBuf]]);
      await submitAndWait(gpu, "residual encode_s", (enc) => {
        const pass = enc.beginComputePass();
        pass.setPipeline(encS);
        pass.setBindGroup(0, bgS);
        pass.dispatchWorkgroups(groups);
        pass.end();
      });
      Z.set(new Float32Array(await readBuffer(gpu, zBuf, Bc * 2 * C * L * 4)), b0 * 2 * C * L);
      intraResidual.set(
        new Float32Array(await readBuffer(gpu, sBuf, Bc * C * L * 4)),
        b0 * C * L,
      );
    } finally {
      for (const b of bufs) b.destroy();
      for (const t of textures) t.destroy();
    }
  }
  const Renc = new Float32Array(B * C * L);
  const Senc = new Float32Array(B * C * L);
  for (let b = 0; b < B; b++) {
    Renc.set(Z.subarray(b * 2 * C * L, (b * 2 + 1) * C * L), b * C * L);
    Senc.set(Z.subarray((b * 2 + 1) * C * L, (b + 1) * 2 * C * L), b * C * L);
  }
  return {
    unary,
    waypoint,
    refMask,
    refIndices,
    intraNn,
    intraResidual,
    Renc,
    Senc,
    Z,
    Cp: C,
    K,
  };
}
