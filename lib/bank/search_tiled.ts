/**
 * Tiled variant of the bank top-k search for real GPUs: `wgsl/bank/knn_tiled.wgsl` (shared-memory bank
 * tiles, register-blocked accumulators, bank split into segments and storage-binding chunks) and
 * `wgsl/bank/knn_merge.wgsl` (per-segment results merged into the final top-k).
 * @module
 */
import { type Gpu, GpuError, withErrorScope } from "../gpu/device.ts";
import { bindGroup, fillTemplate, getPipeline, loadWgsl } from "../gpu/pipeline.ts";
import type { BankIndexImpl } from "./bank_index.ts";
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

const T_WG = 64, T_QPT = 2, T_TB = 32;
/** Loop-iteration budget per invocation (lavapipe allows 65535 back-edges per 8-lane group). */
const LOOP_BUDGET = 16000;

function tiledDc(dp: number): number {
  return dp % 16 === 0 ? 16 : dp % 8 === 0 ? 8 : 4;
}

/** Generate the WGSL of the tiled kernel for (dp, k). */
export async function tiledWgsl(dp: number, k: number): Promise<string> {
  const dc = tiledDc(dp);
  const tb4 = T_TB / 4;
  const init: string[] = [];
  const stores: string[] = [];
  for (let i = 0; i < T_QPT; i++) {
    init.push(`  let q${i} = qb + ${i * T_WG}u;`);
    for (let r = 0; r < k; r++) {
      init.push(`  var t${i}_${r} = P.inf;`, `  var n${i}_${r} = 0xffffffffu;`);
    }
    stores.push(`  let o${i} = ((P.seg_out0 + seg) * qp + q${i}) * ${k}u;`);
    for (let r = 0; r < k; r++) {
      stores.push(`  PD[o${i} + ${r}u] = t${i}_${r};`, `  PI[o${i} + ${r}u] = n${i}_${r};`);
    }
  }
  const acc: string[] = [];
  for (let i = 0; i < T_QPT; i++) {
    for (let j = 0; j < tb4; j++) acc.push(`    var a${i}_${j} = vec4<f32>();`);
  }
  const stage: string[] = [];
  for (let s = 0; s < (T_TB * dc) / T_WG; s++) {
    stage.push(
      `      { let e = li + ${s * T_WG}u; let j = e / ${dc}u; let d = e % ${dc}u; ` +
        `S[d * ${tb4}u + j / 4u][j % 4u] = BK[(r0 + j) * ${dp}u + d0 + d]; }`,
    );
  }
  const macs: string[] = [];
  for (let d = 0; d < dc; d++) {
    const l: string[] = [];
    for (let i = 0; i < T_QPT; i++) {
      l.push(`let qv${i} = vec4<f32>(QT[(d0 + ${d}u) * qp + q${i}]);`);
    }
    for (let j = 0; j < tb4; j++) {
      l.push(`let s${j} = S[${d * tb4 + j}u];`);
      for (let i = 0; i < T_QPT; i++) l.push(`a${i}_${j} = fma(qv${i}, s${j}, a${i}_${j});`);
    }
    macs.push(`      { ${l.join(" ")} }`);
  }
  const ins: string[] = [];
  for (let j = 0; j < T_TB; j++) {
    const l = [`let id = P.chunk_row0 + r0 + ${j}u;`, "let bn = BN[id];"];
    for (let i = 0; i < T_QPT; i++) {
      l.push(`let v${i} = bn - 2.0 * a${i}_${j >> 2}.${"xyzw"[j & 3]};`);
      l.push(insertCode(k, `v${i}`, "id", `t${i}_`, `n${i}_`, `c${i}_`));
    }
    ins.push(`    { ${l.join(" ")} }`);
  }
  const src = await loadWgsl("bank/knn_tiled.wgsl");
  return fillTemplate(src, {
    WG: T_WG,
    QPT: T_QPT,
    TB: T_TB,
    DC: dc,
    DP: dp,
    SDEF: `vec4<f32>, ${(T_TB * dc) / 4}`,
    STATE_INIT: init.join("\n"),
    ACC_DECL: acc.join("\n"),
    STAGE: stage.join("\n"),
    MACS: macs.join("\n"),
    INSERT: ins.join("\n"),
    STATE_STORES: stores.join("\n"),
  });
}

/** Generate the WGSL of the merge kernel for k. */
export async function mergeWgsl(k: number): Promise<string> {
  const sl: string[] = [];
  const ss: string[] = [];
  for (let r = 0; r < k; r++) {
    sl.push(`  var t${r} = TD[q * ${k}u + ${r}u];`, `  var n${r} = TI[q * ${k}u + ${r}u];`);
    ss.push(`  TD[q * ${k}u + ${r}u] = t${r};`, `  TI[q * ${k}u + ${r}u] = n${r};`);
  }
  const src = await loadWgsl("bank/knn_merge.wgsl");
  return fillTemplate(src, {
    WG: 64,
    K: k,
    STATE_LOADS: sl.join("\n"),
    INSERT: "      " + insertCode(k, "v", "id", "t", "n", "c"),
    STATE_STORES: ss.join("\n"),
  });
}

export async function tiledPipelines(gpu: Gpu, dp: number, k: number) {
  const [tiled, merge] = await Promise.all([
    tiledWgsl(dp, k).then((c) => getPipeline(gpu, `knn_tiled:dp${dp}:k${k}`, c)),
    mergeWgsl(k).then((c) => getPipeline(gpu, `knn_merge:k${k}`, c)),
  ]);
  return { tiled, merge };
}

export async function searchTiled(
  gpu: Gpu,
  index: BankIndexImpl,
  queries: Float32Array,
  k: number,
  allowed: Uint8Array | undefined,
): Promise<Int32Array> {
  const { tiled, merge } = await tiledPipelines(gpu, index.dp, k);
  const d = index.d, dp = index.dp, np = index.np;
  const q = queries.length / d;
  const per = T_WG * T_QPT;
  const qp = Math.ceil(q / per) * per;
  const dcs = dp / tiledDc(dp);
  // Segment rows: small enough for the loop budget and for parallelism (≥ ~64 segments).
  const budgetRows = Math.max(64, Math.floor(LOOP_BUDGET / (dcs + 2)) * T_TB);
  let segRows = Math.min(budgetRows, Math.max(256, Math.ceil(np / 64)));
  segRows = Math.max(64, Math.floor(segRows / 64) * 64);
  let chunkRows = Math.floor(gpu.limits.maxStorageBufferBindingSize / (dp * 4));
  chunkRows = Math.floor(chunkRows / segRows) * segRows;
  chunkRows = Math.min(chunkRows, segRows * gpu.limits.maxComputeWorkgroupsPerDimension);
  if (chunkRows < segRows) {
    throw new GpuError(
      `bank search: one segment of ${segRows} rows exceeds the storage binding limit`,
    );
  }
  const chunks: Array<[number, number]> = [];
  for (let s = 0; s < np; s += chunkRows) chunks.push([s, Math.min(np, s + chunkRows)]);
  const nseg = chunks.reduce((a, [s, e]) => a + Math.ceil((e - s) / segRows), 0);
  const partBytes = nseg * qp * k * 4;
  if (partBytes > gpu.limits.maxStorageBufferBindingSize) {
    throw new GpuError(
      `bank search: ${nseg} segments × ${qp} queries exceed the storage binding limit; search fewer queries per call`,
    );
  }
  return await withErrorScope(gpu.device, "bank search (tiled kernel)", async () => {
    const dev = gpu.device;
    const qt = new Float32Array(dp * qp);
    for (let i = 0; i < q; i++) for (let c = 0; c < d; c++) qt[c * qp + i] = queries[i * d + c];
    const mk = (label: string, size: number, usage = U_STORAGE | U_COPY_DST) =>
      dev.createBuffer({ label, size: Math.max(16, size), usage });
    const temps: GPUBuffer[] = [];
    const qtBuf = mk("knn QT", qt.byteLength);
    dev.queue.writeBuffer(qtBuf, 0, qt);
    temps.push(qtBuf);
    let bnBuf = index.normsBuf;
    if (allowed) {
      const bn = index.norms.slice();
      for (let j = 0; j < index.n; j++) if (!allowed[j]) bn[j] = INF;
      bnBuf = mk("knn BN restricted", bn.byteLength);
      dev.queue.writeBuffer(bnBuf, 0, bn);
      temps.push(bnBuf);
    } else if (!bnBuf) {
      bnBuf = index.normsBuf = mk("knn BN", index.norms.byteLength);
      dev.queue.writeBuffer(bnBuf, 0, index.norms as Float32Array<ArrayBuffer>);
    }
    const pd = mk("knn PD", partBytes), pi = mk("knn PI", partBytes);
    const td = new Float32Array(qp * k).fill(INF);
    const ti = new Uint32Array(qp * k).fill(NO_INDEX);
    const tdBuf = mk("knn TD", td.byteLength),
      tiBuf = mk("knn TI", ti.byteLength, U_STORAGE | U_COPY_DST | U_COPY_SRC);
    const staging = mk("knn TI readback", ti.byteLength, U_MAP_READ | U_COPY_DST);
    dev.queue.writeBuffer(tdBuf, 0, td);
    dev.queue.writeBuffer(tiBuf, 0, ti);
    temps.push(pd, pi, tdBuf, tiBuf, staging);
    // Per-dispatch parameters at a 256-byte stride.
    const mergeStep = Math.max(1, Math.floor(LOOP_BUDGET / k));
    const merges: Array<[number, number]> = [];
    for (let s = 0; s < nseg; s += mergeStep) merges.push([s, Math.min(nseg, s + mergeStep)]);
    const stride = Math.max(256, gpu.limits.minUniformBufferOffsetAlignment);
    const nPar = chunks.length + merges.length;
    const params = new ArrayBuffer(nPar * stride);
    const pu = new Uint32Array(params), pf = new Float32Array(params);
    let segOut = 0;
    chunks.forEach(([s, e], c) => {
      const o = (c * stride) / 4;
      pu.set([qp, s, segRows, segOut, e - s], o);
      pf[o + 5] = INF;
      segOut += Math.ceil((e - s) / segRows);
    });
    merges.forEach(([s0, s1], m) => pu.set([qp, s0, s1, 0], ((chunks.length + m) * stride) / 4));
    const parBuf = mk("knn params", params.byteLength, U_UNIFORM | U_COPY_DST);
    dev.queue.writeBuffer(parBuf, 0, params);
    temps.push(parBuf);

    const enc = dev.createCommandEncoder({ label: "bank search (tiled)" });
    const pass = enc.beginComputePass();
    pass.setPipeline(tiled);
    chunks.forEach(([s, e], c) => {
      const bg = bindGroup(gpu, tiled, [
        qtBuf,
        { buffer: index.bankBuf!, offset: s * dp * 4, size: (e - s) * dp * 4 },
        bnBuf!,
        pd,
        pi,
        { buffer: parBuf, offset: c * stride, size: 32 },
      ]);
      pass.setBindGroup(0, bg);
      // The last segment of a chunk may be shorter: the kernel bounds its tiles by P.rows.
      pass.dispatchWorkgroups(qp / per, Math.ceil((e - s) / segRows));
    });
    pass.setPipeline(merge);
    merges.forEach((_, m) => {
      const bg = bindGroup(gpu, merge, [
        pd,
        pi,
        tdBuf,
        tiBuf,
        { buffer: parBuf, offset: (chunks.length + m) * stride, size: 16 },
      ]);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(qp / 64);
    });
    pass.end();
    enc.copyBufferToBuffer(tiBuf, 0, staging, 0, ti.byteLength);
    dev.queue.submit([enc.finish()]);
    await staging.mapAsync(1);
    const res = new Uint32Array(staging.getMappedRange().slice(0));
    staging.unmap();
    for (const b of temps) b.destroy();
    const out = new Int32Array(q * k);
    copyIndices(res, out, 0, q, k);
    return out;
  });
}
