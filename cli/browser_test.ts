/**
 * `deno task browser-test`: snarm on a second WebGPU implementation. Builds and serves the page
 * (web/), drives headless chromium (puppeteer-core; Dawn + Tint on SwiftShader without a GPU) and
 * checks, in the page:
 * (a) every kernel case of web/kernel_cases.ts against its TypeScript reference, and the outputs'
 *     agreement with the same cases run here in Deno (wgpu + Naga, lavapipe in CI);
 * (b) the whole pipeline (onnxruntime-web backbone, bank search, SNARM head, maps) on embedded
 *     hazelnut test images with a bank saved by `deno task eval --save-bank` and the shipped head,
 *     against the Deno run's raw maps and scores (max |Δ| ≤ 1e-4 on the maps);
 * then (with `SNARM_SCREENSHOT=docs/browser.png`) saves a screenshot of the page, and prints
 * `browser: N passed, M failed`.
 * @module
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
// deno-lint-ignore no-import-prefix
import puppeteer from "npm:puppeteer-core@24.31.0";
import { buildPage, servePage } from "../web/server.ts";
import { type CaseResult, runKernelCases } from "../web/kernel_cases.ts";
import { tryGetGpu } from "../lib/gpu/mod.ts";
import { readRawMaps } from "../lib/eval/results.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const HAZEL = join(ROOT, "data/hazelnut_toy/hazelnut");
const MAP_TOL = 1e-4;
const CHROMIUM = Deno.env.get("SNARM_CHROMIUM") ?? "/usr/bin/chromium";

let passed = 0, failed = 0;
function check(ok: boolean, line: string) {
  console.log(`${ok ? "ok  " : "FAIL"} ${line}`);
  if (ok) passed++;
  else failed++;
}

async function main() {
  const t0 = performance.now();
  await buildPage();
  // A small labelled set and the Deno reference run (bank saved for the page, raw maps kept).
  const tmp = await Deno.makeTempDir({ prefix: "snarm_browser_" });
  const cat = join(tmp, "data", "hazelnut");
  const copy = async (rel: string) => {
    await Deno.mkdir(join(cat, rel, ".."), { recursive: true });
    await Deno.copyFile(join(HAZEL, rel), join(cat, rel));
  };
  for (const f of ["00", "01", "02", "03", "06", "07"]) await copy(`train/good/${f}.jpg`);
  const tests = ["test/colour/00.jpg", "test/colour/01.jpg", "test/good/04.jpg"];
  for (const t of tests) await copy(t);
  for (const f of ["00", "01"]) await copy(`ground_truth/colour/${f}_mask.png`);
  const ref = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(ROOT, "cli/eval.ts"),
      "--data",
      join(tmp, "data"),
      "--method",
      "snarm",
      "--head",
      join(ROOT, "data/snarm_head.safetensors"),
      "--bank-size",
      "2000",
      "--save-bank",
      join(tmp, "bank.safetensors"),
      "--save-maps",
      "--no-png",
      "--out",
      join(tmp, "ref"),
    ],
    stdout: "piped",
    stderr: "piped",
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
  }).output();
  if (!ref.success) {
    throw new Error(`reference eval failed:\n${new TextDecoder().decode(ref.stderr)}`);
  }
  const raw = await readRawMaps(join(tmp, "ref", "raw_maps", "hazelnut.safetensors"));

  const server = servePage(0, { "/run/": tmp });
  const base = `http://127.0.0.1:${server.addr.port}`;
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--enable-unsafe-webgpu",
      "--use-webgpu-adapter=swiftshader",
      "--enable-features=Vulkan",
    ],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(m.text());
    });
    await page.goto(`${base}/web/index.html`, { waitUntil: "load" });
    await page.waitForFunction(() => "snarm" in globalThis, { timeout: 60_000 });

    // (a) kernels: in the page against the references, and against this Deno process.
    const gpu = await tryGetGpu();
    if (!gpu) throw new Error("no WebGPU adapter in Deno (install mesa-vulkan-drivers)");
    const here = await runKernelCases(gpu);
    const there = await page.evaluate(async () =>
      // deno-lint-ignore no-explicit-any
      await (globalThis as any).snarm.runKernelCases()
    ) as { adapter: string; results: CaseResult[] };
    console.log(`browser adapter: ${there.adapter}; Deno adapter: ${gpu.info.description}`);
    for (const r of there.results) {
      r.err = r.err ?? Infinity; // JSON turns Infinity (a mismatch or an exception) into null
      const d = here.find((x) => x.name === r.name);
      let agree = NaN;
      if (d && d.sample.length === r.sample.length) {
        agree = 0;
        for (let i = 0; i < r.sample.length; i++) {
          const s = Math.max(1, Math.abs(d.sample[i]));
          agree = Math.max(agree, Math.abs(d.sample[i] - r.sample[i]) / s);
        }
      }
      check(
        r.ok,
        `kernel ${r.name}: browser err ${r.err.toExponential(2)} (Deno ${
          d ? d.err.toExponential(2) : "?"
        }, tol ${r.tol}); browser vs Deno outputs max rel diff ${agree.toExponential(2)}; ${
          r.seconds.toFixed(1)
        } s`,
      );
    }

    // (b) the pipeline on the embedded images, against the Deno run.
    const out = await page.evaluate(async (o) =>
      // deno-lint-ignore no-explicit-any
      await (globalThis as any).snarm.scoreUrls(o), {
      model: `${base}/data/models/mobilenetv2-12-int8.onnx`,
      bank: `${base}/run/bank.safetensors`,
      head: `${base}/data/snarm_head.safetensors`,
      images: raw.paths.map((p) => `${base}/run/${p.slice(tmp.length + 1)}`),
    }) as Array<{ name: string; score: number; map: string; size: number }>;
    const px = raw.size * raw.size;
    for (let i = 0; i < out.length; i++) {
      const b = Uint8Array.from(atob(out[i].map), (c) => c.charCodeAt(0));
      const m = new Float32Array(b.buffer);
      const want = raw.maps.subarray(i * px, (i + 1) * px);
      let err = 0;
      for (let j = 0; j < px; j++) err = Math.max(err, Math.abs(m[j] - want[j]));
      const ds = Math.abs(out[i].score - raw.scores[i]);
      check(
        m.length === px && err <= MAP_TOL && ds <= MAP_TOL,
        `pipeline ${raw.ids[i]}: map max |Δ| ${err.toExponential(2)} vs Deno, score ${
          out[i].score.toFixed(5)
        } vs ${raw.scores[i].toFixed(5)} (tol ${MAP_TOL})`,
      );
    }
    check(out.length === raw.ids.length, `pipeline: ${out.length} of ${raw.ids.length} images`);
    check(
      pageErrors.length === 0,
      `no page errors${pageErrors.length ? `: ${pageErrors.join(" | ")}` : ""}`,
    );
    // the README's picture only when asked (SNARM_SCREENSHOT=docs/browser.png): a test run leaves
    // the tracked file alone
    const shot = Deno.env.get("SNARM_SCREENSHOT");
    if (shot) {
      const path = join(ROOT, shot);
      await Deno.mkdir(join(path, ".."), { recursive: true });
      await page.screenshot({ path: path as `${string}.png` });
    }
  } finally {
    await browser.close();
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  console.log(`browser-test: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

try {
  await main();
} catch (e) {
  console.log(`FAIL browser-test: ${(e as Error).message}`);
  failed++;
}
console.log(`browser: ${passed} passed, ${failed} failed`);
Deno.exit(failed ? 1 : 0);
