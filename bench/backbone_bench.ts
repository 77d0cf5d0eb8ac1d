/**
 * Backbone speed per ONNX Runtime engine, same run: onnxruntime-node's native CPU engine
 * (`native`, intra-op threads = cores) vs onnxruntime-web's wasm EP (`wasm`, 1 thread), for the
 * embedded MobileNetV2 (392² input, 49×49 grid, 256-d features) and, when the shared fixture is
 * present, the DINOv2-architecture `dinov2_tiny` (392², official SNARM taps, 512-d), and a ViT-B/14
 * reg4 of the official size with random weights (bench/_vit.ts, `vitb14`;
 * `SNARM_BACKBONE_BENCH_VITB=0` skips it: its wasm runs take about a minute).
 *
 * Time per image = median wall time of `embed` on a (1, 3, 392, 392) input after 2 warm-up calls:
 * the ONNX run and the SNARM feature recipe (group means, bilinear to the grid, channel pooling).
 * Prints `backbone <model> <engine>: X ms/image` lines and the load average.
 *
 * Run: `deno run -A bench/backbone_bench.ts` (or `deno bench -A bench/backbone_bench.ts`).
 * @module
 */
import { fileURLToPath } from "node:url";
import { loadavg } from "node:os";
import { loadBackbone } from "../lib/backbone/mod.ts";
import { vitB14Model } from "./_vit.ts";

const SIZE = 392, RUNS = 7;
const DINO = new URL("../../shared/fixtures/dinov2_tiny/model.onnx", import.meta.url);

function input(seed: number): Float32Array {
  const x = new Float32Array(3 * SIZE * SIZE);
  let s = seed >>> 0;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = (s / 4294967296 - 0.5) * 4;
  }
  return x;
}

async function time(name: string, preset: string, engine: "native" | "wasm", model?: string) {
  const bb = await loadBackbone(preset, {
    engine,
    inputSize: SIZE,
    grid: SIZE / 8,
    ...(model ? { modelPath: model } : {}),
  });
  try {
    const x = input(1);
    for (let i = 0; i < 2; i++) await bb.embed(x, [1, 3, SIZE, SIZE]);
    const ts: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      await bb.embed(x, [1, 3, SIZE, SIZE]);
      ts.push(performance.now() - t);
    }
    ts.sort((a, b) => a - b);
    const ms = ts[Math.floor(ts.length / 2)];
    console.log(`backbone ${name} ${engine}: ${ms.toFixed(1)} ms/image`);
    return ms;
  } finally {
    await bb.release();
  }
}

async function main() {
  console.log(`load average at start: ${loadavg().map((v) => v.toFixed(2)).join(" ")}`);
  const mn = await time("mobilenetv2", "mobilenetv2", "native");
  const mw = await time("mobilenetv2", "mobilenetv2", "wasm");
  console.log(`backbone mobilenetv2 native vs wasm: ${(mw / mn).toFixed(2)}×`);
  let dino = true;
  try {
    await Deno.stat(DINO);
  } catch {
    dino = false;
    console.log("dinov2_tiny fixture not found (../shared/fixtures): skipped");
  }
  if (dino) {
    const path = fileURLToPath(DINO);
    const dn = await time("dinov2_tiny", "dinov2-vitb14-reg4", "native", path);
    const dw = await time("dinov2_tiny", "dinov2-vitb14-reg4", "wasm", path);
    console.log(`backbone dinov2_tiny native vs wasm: ${(dw / dn).toFixed(2)}×`);
  }
  if (Deno.env.get("SNARM_BACKBONE_BENCH_VITB") !== "0") {
    // the official model's size (random weights; bench/_vit.ts), written to a temp file
    const path = await Deno.makeTempFile({ prefix: "snarm-vitb14-", suffix: ".onnx" });
    try {
      await Deno.writeFile(path, vitB14Model());
      const vn = await time("vitb14", "dinov2-vitb14-reg4", "native", path);
      const vw = await time("vitb14", "dinov2-vitb14-reg4", "wasm", path);
      console.log(`backbone vitb14 native vs wasm: ${(vw / vn).toFixed(2)}×`);
    } finally {
      await Deno.remove(path);
    }
  }
  console.log(`load average at end: ${loadavg().map((v) => v.toFixed(2)).join(" ")}`);
}

if (import.meta.main) await main();
else {
  Deno.bench({ name: "backbone engines (see the printed lines)", n: 1, warmup: 0 }, main);
}
