/**
 * Benchmarks of the SNARM head in the paper configuration (official `paper` fixture: 1024 input
 * channels, 49×49 grid, 4 rates × 4 scans, d = 128, maps 392×392), run with `deno bench -A
 * bench/head_bench.ts`:
 * - the Mamba head + maps from the hybrid residual Z, WebGPU (default adapter) vs the TypeScript
 *   reference, measured in the same run (group "head from Z", baseline = reference);
 * - the full forward from X (residual fusion + Mamba head + maps, 392² maps) per engine, same run:
 *   `head paper <engine>: X s/image` (median of 3 rounds × 5 after 4 warm-ups each, alternating
 *   with the peer's rounds) for the native CPU engine
 *   (onnxruntime-node, lib/model/native_head.ts) and WebGPU (the adapter's WGSL kernels), and
 *   the peer `head paper torch` (bench/head_torch.py: the official forward's PyTorch ops, checked
 *   against the fixture, threads = cores) when Debian's python3-torch and python3-scipy are here;
 * - the selective scan kernel alone, in the mixer's size (4 × 600 tokens × 256 channels) and at
 *   L = 2401, d_inner = 512.
 * Before the benches it prints the max |error| of every tensor vs the paper fixture, the CPU time
 * per forward (process CPU, robust when other processes share the cores), a per-kernel profile
 * and the scan throughput in (token·channel)/s.
 */
import { fileURLToPath } from "node:url";
import process from "node:process";
import { tryGetGpu } from "../lib/gpu/device.ts";
import { readSafeTensors } from "../lib/io/safetensors.ts";
import {
  type Capture,
  headForwardRef,
  headMaps,
  layoutNLD,
  loadHead,
  type ScanDims,
  SelectiveScanProgram,
  selectiveScanRef,
} from "../lib/model/mod.ts";
import { fuseResiduals } from "../lib/residual/mod.ts";
import { nativeSearchAvailable } from "../lib/bank/search.ts";
import { type PairedPeer, startPairedPeer } from "./_peer.ts";
import { median } from "./_stats.ts";

const FIX = new URL("../../shared/fixtures/snarm_official/paper/", import.meta.url);
const io = await readSafeTensors(new URL("io.safetensors", FIX));
const head = await loadHead(new URL("weights.safetensors", FIX));
const X = io.tensors.get("X")!.data as Float32Array;
const f = (n: string) => io.tensors.get(n)!.data as Float32Array;
const h = 49, w = 49, B = 1, nH = head.dims.nHeads;
const gpu = await tryGetGpu();

const fused = await fuseResiduals(X, B, h, w, head.weights.unaryW, head.weights.unaryB[0], {
  ratio: head.config.self_ratio,
  method: head.config.residual_method,
  engine: "webgpu",
});
const Ls = h * w - fused.K;

function maxErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i] - b[i]));
  return e;
}

async function cpuAndWall<T>(
  fn: () => Promise<T> | T,
): Promise<{ v: T; wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const v = await fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { v, wall, cpu: (c.user + c.system) / 1000 };
}

/**
 * Timing per engine, for this bench and the torch peer alike: ROUNDS rounds, each of WARMUP
 * warm-up and REPS timed forwards, ours and the peer's alternating round by round, so both see the
 * same machine (the native engine settles after a few forwards, and one image of an eval is one
 * of hundreds: every round warms up first).
 */
const ROUNDS = 3, WARMUP = 4, REPS = 5;

/**
 * The torch peer (bench/head_torch.py on the paper fixture, checked against it first, warmed up),
 * answering one timed forward per request; null when not run.
 */
function torchPeer(): Promise<PairedPeer | null> {
  if (Deno.env.get("SNARM_HEAD_BENCH_TORCH") === "0") return Promise.resolve(null);
  const args = [
    fileURLToPath(FIX),
    String(navigator.hardwareConcurrency),
    "0",
    "0",
    "--paired",
  ];
  return startPairedPeer("./head_torch.py", args, "head torch peer", "python3-torch python3-scipy");
}

// ---- parity vs the official paper fixture (WebGPU path) and the one-off timings
{
  const t0 = performance.now();
  const cap: Capture = new Map();
  const r = await head.forward(X, B, h, w, { capture: cap });
  console.log(
    `first forward (pipeline compilation + capture) ${(performance.now() - t0).toFixed(0)} ms`,
  );
  const rows: Array<[string, number]> = [
    ["unary", maxErr(r.unary, f("unary"))],
    ["ref_mask", maxErr(r.refMask, f("ref_mask"))],
    ["head_logits", maxErr(r.headLogits, f("head_logits"))],
    ["pixel_map", maxErr(r.pixelMap, f("pixel_map"))],
    ["pixel_map_smoothed_per_image", maxErr(r.smoothed, f("pixel_map_smoothed_per_image"))],
    ["image_score_per_image", maxErr(r.imageScores, f("image_score_per_image"))],
  ];
  for (const [k, v] of cap) if (io.tensors.has(k)) rows.push([k, maxErr(v, f(k))]);
  console.log(
    `max |error| vs the official paper fixture (${gpu ? gpu.info.description : "TS reference"}):`,
  );
  for (const [k, v] of rows) console.log(`  ${k.padEnd(30)} ${v.toExponential(2)}`);
  // the program profiled below (no maps)
  await head.logits(fused.Z, fused.refMask, B, h, w, { engine: gpu ? "webgpu" : "reference" });
  const engines = [
    ...((await nativeSearchAvailable()) ? ["native" as const] : []),
    ...(gpu ? ["webgpu" as const] : []),
  ];
  const perImage = new Map<string, number>();
  // The peer in the same run: the official forward's PyTorch ops (bench/head_torch.py, checked
  // against the fixture first) with as many threads as cores, when Debian's python3-torch is here.
  let peer = await torchPeer();
  /** The peer's round, or null when it failed (the bench goes on without it). */
  const peerRound = async (): Promise<number[] | null> => {
    try {
      return await peer!.times(WARMUP, REPS);
    } catch (e) {
      console.log(`head torch peer: stopped (${(e as Error).message})`);
      await peer!.close();
      peer = null;
      return null;
    }
  };
  const torchLine = (tp: number[]) => {
    perImage.set("torch", median(tp));
    console.log(`head paper torch: ${(median(tp) / 1000).toFixed(3)} s/image`);
  };
  try {
    for (const engine of engines) {
      const t: number[] = [], tp: number[] = [], ratios: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        for (let i = 0; i < WARMUP; i++) await head.forward(X, B, h, w, { engine });
        const tr: number[] = [];
        for (let i = 0; i < REPS; i++) {
          tr.push((await cpuAndWall(() => head.forward(X, B, h, w, { engine }))).wall);
        }
        t.push(...tr);
        const pr = peer ? await peerRound() : null;
        if (!pr) continue;
        tp.push(...pr);
        ratios.push(median(tr) / median(pr));
      }
      perImage.set(engine, median(t));
      console.log(`head paper ${engine}: ${(median(t) / 1000).toFixed(3)} s/image`);
      console.log(
        `  median of ${ROUNDS} rounds × ${REPS} after ${WARMUP} warm-ups each (min ${
          (Math.min(...t) / 1000).toFixed(3)
        } s)`,
      );
      if (ratios.length < ROUNDS) continue;
      // the torch figure of the first engine's rounds is the one the ratios below use
      if (!perImage.has("torch")) torchLine(tp);
      console.log(
        `  ${engine}/torch time (< 1: ${engine} faster) in alternating rounds: per round ${
          ratios.map((v) => v.toFixed(2)).join(", ")
        }× (their median ${median(ratios).toFixed(2)}×); torch median ${
          (median(tp) / 1000).toFixed(3)
        } s`,
      );
    }
    // no engine of ours here: the peer's own figure
    if (peer && !engines.length) {
      const tp = await peerRound();
      if (tp) torchLine(tp);
    }
  } finally {
    await peer?.close();
  }
  for (const [a, b] of [["native", "torch"], ["webgpu", "torch"], ["native", "webgpu"]]) {
    if (perImage.has(a) && perImage.has(b)) {
      console.log(
        `head paper ${a}/${b}: ${
          (perImage.get(a)! / perImage.get(b)!).toFixed(2)
        }× the time (< 1: ${a} faster)`,
      );
    }
  }
  const runs = [];
  for (let i = 0; i < 3; i++) {
    runs.push(await cpuAndWall(() => head.forward(X, B, h, w, { engine: "webgpu" })));
  }
  const parts = [];
  for (let i = 0; i < 3; i++) {
    const fu = await cpuAndWall(() =>
      fuseResiduals(X, B, h, w, head.weights.unaryW, head.weights.unaryB[0], {
        ratio: head.config.self_ratio,
        method: head.config.residual_method,
        engine: "webgpu",
      })
    );
    const lg = await cpuAndWall(() =>
      head.fromZ(fused.Z, fused.refMask, B, h, w, { engine: "webgpu" })
    );
    parts.push({ fu, lg });
  }
  const best = <T>(a: T[], k: (x: T) => number) => a.reduce((m, x) => (k(x) < k(m) ? x : m));
  const b = best(runs, (x) => x.cpu);
  console.log(
    `full forward per image: wall ${b.wall.toFixed(0)} ms, process CPU ${
      b.cpu.toFixed(0)
    } ms (best of 3 by CPU)`,
  );
  const p = best(parts, (x) => x.lg.cpu);
  console.log(
    `  residual fusion ${p.fu.wall.toFixed(0)}/${p.fu.cpu.toFixed(0)} ms, Mamba head + maps ${
      p.lg.wall.toFixed(0)
    }/${p.lg.cpu.toFixed(0)} ms (wall/CPU)`,
  );
  const prog = gpu ? await head.gpuProgram(h, w, Ls) : null;
  if (prog) {
    await head.logits(fused.Z, fused.refMask, B, h, w, { engine: "webgpu" });
    const prof = await prog.profile();
    const list = [...prof].sort((x, y) => y[1].cpu - x[1].cpu);
    const tot = list.reduce((s, [, v]) => s + v.cpu, 0);
    console.log(`per-kernel process CPU ms (one submit per step; total ${tot.toFixed(0)} ms):`);
    for (const [k, v] of list.slice(0, 16)) console.log(`  ${k.padEnd(24)} ${v.cpu.toFixed(1)}`);
  }
}

// ---- selective scan alone
const scanSizes: Array<[string, ScanDims]> = [
  ["mixer size 4×600×256", { nSeq: 4, L: Ls, dInner: 256, dState: 4 }],
  ["L=2401 d_inner=512, 4 seqs", { nSeq: 4, L: 2401, dInner: 512, dState: 4 }],
];
const scanProgs: SelectiveScanProgram[] = [];
if (gpu) {
  for (const [label, dims] of scanSizes) {
    const n = dims.nSeq * dims.L * dims.dInner;
    const r = (k: number, s = 1) =>
      Float32Array.from({ length: k }, (_, i) => Math.sin(i * 12.9898 + s) * 0.7);
    const ops = {
      u: r(n, 1),
      delta: r(n, 2),
      z: r(n, 3),
      B: r(dims.nSeq * dims.L * 4, 4),
      C: r(dims.nSeq * dims.L * 4, 5),
      A: r(dims.dInner * 4, 6).map((v) => -Math.exp(v)),
      D: r(dims.dInner, 7),
      deltaBias: r(dims.dInner, 8),
    };
    const prog = await SelectiveScanProgram.create(gpu, ops, dims, layoutNLD(dims));
    await prog.run();
    const REP = 20;
    const times = [];
    for (let i = 0; i < 3; i++) times.push((await cpuAndWall(() => prog.run(REP))).wall / REP);
    times.sort((a, b) => a - b);
    const tc = dims.nSeq * dims.L * dims.dInner;
    console.log(
      `selective scan ${label}: ${
        times[1].toFixed(2)
      } ms per dispatch (median of 3 submits of ${REP}) = ${
        (tc / (times[1] / 1000) / 1e6).toFixed(1)
      } M(token·channel)/s`,
    );
    scanProgs.push(prog);
  }
}

// ---- deno bench entries
Deno.bench({
  name: "Mamba head + maps from Z, TypeScript reference (paper config)",
  group: "head from Z",
  baseline: true,
  n: 1,
  warmup: 0,
  fn() {
    const lg = headForwardRef(head.weights, fused.Z, fused.refMask, B, h, w);
    headMaps(lg, nH, B, h, w, 392, 392);
  },
});

Deno.bench({
  name: "Mamba head + maps from Z, WebGPU default adapter (paper config)",
  group: "head from Z",
  ignore: !gpu,
  n: 5,
  warmup: 1,
  async fn() {
    await head.fromZ(fused.Z, fused.refMask, B, h, w, { engine: "webgpu" });
  },
});

Deno.bench({
  name: "full head forward from X (fusion + Mamba head + maps), WebGPU (paper config)",
  group: "full",
  ignore: !gpu,
  n: 5,
  warmup: 1,
  async fn() {
    await head.forward(X, B, h, w, { engine: "webgpu" });
  },
});

Deno.bench({
  name: "full head forward from X (fusion + Mamba head + maps), native CPU engine (paper config)",
  group: "full",
  ignore: !(await nativeSearchAvailable()),
  n: 5,
  warmup: 1,
  async fn() {
    await head.forward(X, B, h, w, { engine: "native" });
  },
});

{
  const dims = scanSizes[0][1];
  const n = dims.nSeq * dims.L * dims.dInner;
  const r = (k: number, s = 1) =>
    Float32Array.from({ length: k }, (_, i) => Math.sin(i * 12.9898 + s) * 0.7);
  const ops = {
    u: r(n, 1),
    delta: r(n, 2),
    z: r(n, 3),
    B: r(dims.nSeq * dims.L * 4, 4),
    C: r(dims.nSeq * dims.L * 4, 5),
    A: r(dims.dInner * 4, 6).map((v) => -Math.exp(v)),
    D: r(dims.dInner, 7),
    deltaBias: r(dims.dInner, 8),
  };
  const lay = layoutNLD(dims);
  Deno.bench({
    name: `selective scan TypeScript reference ×10, ${scanSizes[0][0]}`,
    group: "scan",
    baseline: true,
    n: 3,
    warmup: 1,
    fn() {
      for (let i = 0; i < 10; i++) selectiveScanRef(ops, dims, lay);
    },
  });
}

scanSizes.forEach(([label], i) => {
  Deno.bench({
    name: `selective scan kernel alone ×10 per submit, ${label}`,
    group: "scan",
    ignore: !gpu,
    n: 10,
    warmup: 2,
    async fn() {
      await scanProgs[i].run(10); // 10 dispatches per submit
    },
  });
});
