/**
 * Broadcast (design E) variant of the bank top-k search for CPU adapters such as lavapipe
 * (shared/docs/webgpu-on-lavapipe.md, `wgsl/bank/knn_broadcast.wgsl`): plan, unrolled WGSL generator,
 * bind groups and dispatch. Returns the chosen indices; distances are recomputed by the caller.
 * @module
 */
import { type Gpu, GpuError, withErrorScope } from "../gpu/device.ts";
import { bindGroup, fillTemplate, getPipeline, loadWgsl } from "../gpu/pipeline.ts";
import { type BankIndexImpl, ROW_PAD } from "./bank_index.ts";
import {
  copyIndices,
  INF,
  insertCode,
  NO_INDEX,
  U_COPY_DST,
  U_COPY_SRC,
  U_MAP_READ,
  U_STORAGE,
  U_UNIFORM,
} from "./search_common.ts";
import { TextureUsage } from "../gpu/buffers.ts";

/** Parameters of the broadcast (design E) kernel. Code size = nb·w·dp·qpi unrolled MACs. */
export interface BroadcastPlan {
  /** Bank rows per window (multiple of 4; nb·dp·4 bytes of uniform binding and workgroup memory). */
  nb: number;
  /** Windows per dispatch. */
  w: number;
  /** Queries per invocation. */
  qpi: number;
  /** Workgroup size (multiple of 8). */
  wg: number;
}

/**
 * Default broadcast plan for a padded feature size, or `null` when no window of ≥ 4 rows fits.
 * nb = largest power of two ≤ min(256, 32 KiB/(dp·4)) whose window (nb·dp·4 bytes, staged whole in
 * workgroup memory) is a multiple of the uniform offset alignment: 256 rows at D = 32, 64 at 128,
 * 16 at 512; w = 2 windows per dispatch for dp ≥ 256 (spreads the per-dispatch costs); qpi = 2.
 * Code size nb·w·dp·qpi ≤ 32 K unrolled MACs (pipeline creation ≈ 1–3 s, first-dispatch LLVM JIT
 * ≈ 5–15 s on lavapipe). The workgroup size is 128, or, when the query count `q` is known and large
 * (≥ 2048, one image of 49×49 patches or more), the multiple of 8 in [128, 256] that spreads the
 * workgroups most evenly over the adapter's worker threads (each dispatch waits for its slowest
 * thread): for q = 2401 on 2 threads that is 152 (8 workgroups).
 */
export function broadcastPlanFor(gpu: Gpu, dp: number, q?: number): BroadcastPlan | null {
  const lim = gpu.limits;
  const maxRows = Math.min(256, Math.floor(lim.maxComputeWorkgroupStorageSize / (dp * 4)));
  let nb = 1;
  while (nb * 2 <= maxRows) nb *= 2;
  while (
    nb >= 4 &&
    ((nb * dp * 4) % lim.minUniformBufferOffsetAlignment !== 0 ||
      nb * dp * 4 > lim.maxUniformBufferBindingSize)
  ) nb /= 2;
  if (nb < 4) return null;
  const qpi = 2;
  return { nb, w: dp >= 256 ? 2 : 1, qpi, wg: balancedWorkgroup(gpu, q, qpi) };
}

function balancedWorkgroup(gpu: Gpu, q: number | undefined, qpi: number): number {
  if (q === undefined || q < 2048) return 128;
  const threads = Math.max(1, navigator.hardwareConcurrency || 1);
  const rows = Math.min(q, gpu.limits.maxTextureDimension2D);
  let best = 128, bestCost = Infinity;
  for (let wg = 128; wg <= 256; wg += 8) {
    const groups = Math.ceil(rows / (wg * qpi));
    const cost = Math.ceil(groups / threads) * wg * (1 + 0.001 * groups); // ties: fewer dispatches units
    if (cost < bestCost) [best, bestCost] = [wg, cost];
  }
  return best;
}

export function resolvePlan(
  gpu: Gpu,
  dp: number,
  q: number | undefined,
  over?: Partial<BroadcastPlan>,
): BroadcastPlan {
  const base = broadcastPlanFor(gpu, dp, q);
  if (!base && !over?.nb) {
    throw new GpuError(
      `bank search: no broadcast plan fits D=${dp} (uniform window / workgroup memory); use the tiled variant`,
    );
  }
  const p = {
    ...(base ?? { nb: 4, w: 1, qpi: 2, wg: 128 }),
    ...(over ?? {}),
  } as BroadcastPlan;
  const lim = gpu.limits;
  if (
    p.nb % 4 !== 0 || p.nb * p.w > ROW_PAD || ROW_PAD % (p.nb * p.w) !== 0 ||
    (p.nb * dp * 4) % lim.minUniformBufferOffsetAlignment !== 0 ||
    p.nb * dp * 4 > lim.maxUniformBufferBindingSize ||
    p.nb * dp * 4 > lim.maxComputeWorkgroupStorageSize ||
    p.wg % 8 !== 0 || p.wg < 8 || p.wg > lim.maxComputeInvocationsPerWorkgroup || p.qpi < 1 ||
    p.w < 1 || p.w > lim.maxUniformBuffersPerShaderStage - 1
  ) {
    throw new GpuError(`bank search: invalid broadcast plan ${JSON.stringify(p)} for D=${dp}`);
  }
  return p;
}

/** Generate the unrolled WGSL of the broadcast kernel for (dp, k, plan). */
export async function broadcastWgsl(dp: number, k: number, p: BroadcastPlan): Promise<string> {
  const { nb, w: W, qpi, wg } = p;
  const d4 = dp / 4;
  const nbd4 = nb * d4;
  const bind: string[] = [];
  for (let w = 0; w < W; w++) {
    bind.push(`@group(1) @binding(${w}) var<uniform> B${w}: array<vec4<f32>, ${nbd4}>;`);
  }
  const ql: string[] = [];
  for (let i = 0; i < qpi; i++) {
    for (let c = 0; c < d4; c++) {
      ql.push(`  let x${i}_${c} = textureLoad(qtex, vec2<i32>(${c}, i32(q0 + ${i}u)), 0);`);
    }
  }
  const sl: string[] = [];
  const ss: string[] = [];
  for (let i = 0; i < qpi; i++) {
    for (let r = 0; r < k; r++) {
      const at = `(q0 + ${i}u) * ${k}u + ${r}u`;
      sl.push(`  var t${i}_${r} = TD[${at}];`, `  var n${i}_${r} = TI[${at}];`);
      ss.push(`  TD[${at}] = t${i}_${r};`, `  TI[${at}] = n${i}_${r};`);
    }
  }
  const win: string[] = [];
  const full = Math.floor(nbd4 / wg);
  const rem = nbd4 % wg;
  for (let w = 0; w < W; w++) {
    if (w > 0) win.push("  workgroupBarrier();");
    for (let e = 0; e < full; e++) win.push(`  S[li + ${e * wg}u] = B${w}[li + ${e * wg}u];`);
    if (rem) win.push(`  if (li < ${rem}u) { S[li + ${full * wg}u] = B${w}[li + ${full * wg}u]; }`);
    win.push("  workgroupBarrier();");
    // One bank row at a time, 4 partial sums (a vec4) per query: 4·qpi independent add chains.
    for (let j = 0; j < nb; j++) {
      const m = w * nb + j;
      const lines: string[] = ["  {"];
      for (let c = 0; c < d4; c++) {
        const acc = [];
        for (let i = 0; i < qpi; i++) {
          acc.push(
            c === 0 ? `var a${i} = x${i}_0 * b0;` : `a${i} = fma(x${i}_${c}, b${c}, a${i});`,
          );
        }
        lines.push(`    let b${c} = S[${j * d4 + c}u]; ${acc.join(" ")}`);
      }
      lines.push(`    let id = base + ${m}u;`, `    let bn = R.bn[${m >> 2}].${"xyzw"[m & 3]};`);
      for (let i = 0; i < qpi; i++) {
        lines.push(`    let v${i} = bn - 2.0 * ((a${i}.x + a${i}.y) + (a${i}.z + a${i}.w));`);
        lines.push("    " + insertCode(k, `v${i}`, "id", `t${i}_`, `n${i}_`, `c${i}_`));
      }
      lines.push("  }");
      win.push(lines.join("\n"));
    }
  }
  const src = await loadWgsl("bank/knn_broadcast.wgsl");
  return fillTemplate(src, {
    WG: wg,
    QPI: qpi,
    NBD4: nbd4,
    NBW4: (nb * W) / 4,
    BANK_BINDINGS: bind.join("\n"),
    QUERY_LOADS: ql.join("\n"),
    STATE_LOADS: sl.join("\n"),
    WINDOWS: win.join("\n"),
    STATE_STORES: ss.join("\n"),
  });
}

export async function broadcastPipeline(
  gpu: Gpu,
  dp: number,
  k: number,
  p: BroadcastPlan,
): Promise<{ pipeline: GPUComputePipeline; key: string }> {
  const key = `knn_broadcast:dp${dp}:k${k}:nb${p.nb}:w${p.w}:qpi${p.qpi}:wg${p.wg}`;
  const code = await broadcastWgsl(dp, k, p);
  return { pipeline: await getPipeline(gpu, key, code), key };
}

/** Record stride in bytes: base (16 B) + w·nb |b|² floats, aligned to the uniform offset alignment. */
function recordStride(gpu: Gpu, p: BroadcastPlan): number {
  const a = Math.max(16, gpu.limits.minUniformBufferOffsetAlignment);
  return Math.ceil((16 + p.nb * p.w * 4) / a) * a;
}

function makeRecords(
  gpu: Gpu,
  index: BankIndexImpl,
  p: BroadcastPlan,
  allowed: Uint8Array | null,
): GPUBuffer {
  const rows = p.nb * p.w;
  const nd = index.np / rows;
  const stride = recordStride(gpu, p);
  const bytes = new ArrayBuffer(nd * stride);
  const u = new Uint32Array(bytes);
  const f = new Float32Array(bytes);
  for (let c = 0; c < nd; c++) {
    const o = (c * stride) / 4;
    u[o] = c * rows;
    for (let m = 0; m < rows; m++) {
      const j = c * rows + m;
      f[o + 4 + m] = allowed && j < index.n && !allowed[j] ? INF : index.norms[j];
    }
  }
  const buf = gpu.device.createBuffer({
    label: "knn records",
    size: bytes.byteLength,
    usage: U_UNIFORM | U_COPY_DST,
  });
  gpu.device.queue.writeBuffer(buf, 0, bytes);
  return buf;
}

export function broadcastGroups(
  gpu: Gpu,
  index: BankIndexImpl,
  pipeline: GPUComputePipeline,
  key: string,
  p: BroadcastPlan,
  allowed: Uint8Array | null,
): { bank: GPUBindGroup[]; rec: GPUBindGroup[]; tmp: GPUBuffer | null } {
  const rows = p.nb * p.w;
  const nd = index.np / rows;
  const winBytes = p.nb * index.dp * 4;
  let bank = index.bankGroups.get(key);
  if (!bank) {
    bank = [];
    for (let c = 0; c < nd; c++) {
      const windows = Array.from({ length: p.w }, (_, w) => ({
        buffer: index.bankBuf!,
        offset: (c * rows + w * p.nb) * index.dp * 4,
        size: winBytes,
      }));
      bank.push(bindGroup(gpu, pipeline, windows, "", 1));
    }
    index.bankGroups.set(key, bank);
  }
  const recBytes = 16 + rows * 4;
  const stride = recordStride(gpu, p);
  const build = (buf: GPUBuffer) => {
    const out: GPUBindGroup[] = [];
    for (let c = 0; c < nd; c++) {
      out.push(
        bindGroup(gpu, pipeline, [{ buffer: buf, offset: c * stride, size: recBytes }], "", 2),
      );
    }
    return out;
  };
  if (allowed) {
    const tmp = makeRecords(gpu, index, p, allowed);
    return { bank, rec: build(tmp), tmp };
  }
  const planKey = `${p.nb}:${p.w}`;
  let recBuf = index.records.get(planKey);
  if (!recBuf) {
    recBuf = makeRecords(gpu, index, p, null);
    index.records.set(planKey, recBuf);
  }
  let rec = index.recGroups.get(key);
  if (!rec) {
    rec = build(recBuf);
    index.recGroups.set(key, rec);
  }
  return { bank, rec, tmp: null };
}

export async function searchBroadcast(
  gpu: Gpu,
  index: BankIndexImpl,
  queries: Float32Array,
  k: number,
  allowed: Uint8Array | undefined,
  over?: Partial<BroadcastPlan>,
): Promise<Int32Array> {
  const p = resolvePlan(gpu, index.dp, queries.length / index.d, over);
  const { pipeline, key } = await broadcastPipeline(gpu, index.dp, k, p);
  const d = index.d, dp = index.dp;
  const q = queries.length / d;
  const per = p.wg * p.qpi;
  const maxRows = Math.floor(gpu.limits.maxTextureDimension2D / per) * per;
  const out = new Int32Array(q * k);
  return await withErrorScope(gpu.device, "bank search (broadcast kernel)", async () => {
    const groups = broadcastGroups(gpu, index, pipeline, key, p, allowed ?? null);
    try {
      for (let q0 = 0; q0 < q; q0 += maxRows) {
        const qc = Math.min(maxRows, q - q0);
        const qp = Math.ceil(qc / per) * per;
        const texData = new Float32Array(qp * dp);
        if (dp === d) texData.set(queries.subarray(q0 * d, (q0 + qc) * d));
        else {for (let i = 0; i < qc; i++) {
            texData.set(queries.subarray((q0 + i) * d, (q0 + i + 1) * d), i * dp);
          }}
        const tex = gpu.device.createTexture({
          label: "knn queries",
          size: [dp / 4, qp],
          format: "rgba32float",
          usage: TextureUsage.TEXTURE_BINDING | TextureUsage.COPY_DST,
        });
        gpu.device.queue.writeTexture({ texture: tex }, texData, {
          bytesPerRow: dp * 4,
          rowsPerImage: qp,
        }, [dp / 4, qp]);
        const td = new Float32Array(qp * k).fill(INF);
        const ti = new Uint32Array(qp * k).fill(NO_INDEX);
        const tdBuf = gpu.device.createBuffer({
          label: "knn TD",
          size: td.byteLength,
          usage: U_STORAGE | U_COPY_DST,
        });
        const tiBuf = gpu.device.createBuffer({
          label: "knn TI",
          size: ti.byteLength,
          usage: U_STORAGE | U_COPY_DST | U_COPY_SRC,
        });
        const staging = gpu.device.createBuffer({
          label: "knn TI readback",
          size: ti.byteLength,
          usage: U_MAP_READ | U_COPY_DST,
        });
        gpu.device.queue.writeBuffer(tdBuf, 0, td);
        gpu.device.queue.writeBuffer(tiBuf, 0, ti);
        const g0 = bindGroup(gpu, pipeline, [tex.createView(), tdBuf, tiBuf]);
        const enc = gpu.device.createCommandEncoder({ label: "bank search" });
        const pass = enc.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, g0);
        const wgs = qp / per;
        for (let c = 0; c < groups.bank.length; c++) {
          pass.setBindGroup(1, groups.bank[c]);
          pass.setBindGroup(2, groups.rec[c]);
          pass.dispatchWorkgroups(wgs);
        }
        pass.end();
        enc.copyBufferToBuffer(tiBuf, 0, staging, 0, ti.byteLength);
        gpu.device.queue.submit([enc.finish()]);
        await staging.mapAsync(1);
        const res = new Uint32Array(staging.getMappedRange().slice(0));
        staging.unmap();
        for (const b of [staging, tdBuf, tiBuf]) b.destroy();
        tex.destroy();
        copyIndices(res, out, q0, qc, k);
      }
    } finally {
      groups.tmp?.destroy();
    }
    return out;
  });
}
