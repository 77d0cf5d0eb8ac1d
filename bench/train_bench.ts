/**
 * Benchmark of one SNARM head training step (forward + loss + backward + AdamW) per image at the
 * official geometry (49×49 grid, 512 input channels = 2 × 256-d MobileNetV2 features, 75%
 * self-references), for the `cpu` and `paper` presets of lib/train/run.ts, on the default WebGPU
 * adapter (lib/train/gpu/head_train.ts) vs the float64 TypeScript reference
 * (`headForwardBackwardRef` + `AdamW.step`) in the same run:
 *
 *   deno bench -A bench/train_bench.ts
 *
 * The GPU benches run B = 1 (same work as the reference) and the preset's batch (cpu 4, paper 2;
 * divide by B for the time per image). The reference runs one image per step (B = 1) once, since
 * it takes seconds to a minute. Inputs are random Z in the residuals' range with a random navigation
 * mask; speed does not depend on the values. The residual fusion (a separate stage, see
 * bench/head_bench.ts) is not included.
 */
import { tryGetGpu } from "../lib/gpu/device.ts";
import { parseHeadConfig } from "../lib/model/config.ts";
import { AdamW } from "../lib/train/adamw.ts";
import { headForwardBackwardRef, headParameters } from "../lib/train/backward_ref.ts";
import { GpuHeadTrainer } from "../lib/train/gpu/head_train.ts";
import { mulberry32 } from "../lib/ops/pointwise.ts";
import { initHeadWeights } from "../lib/train/init.ts";
import { TRAIN_PRESETS } from "../lib/train/run.ts";

const h = 49, w = 49, L = h * w, Cin = 512, Ls = L - Math.round(0.75 * L);
const gpu = await tryGetGpu();

function batch(B: number, seed: number) {
  const rnd = mulberry32(seed);
  const Z = new Float32Array(B * Cin * L).map(() => rnd() * 0.5);
  const refMask = new Uint8Array(B * L).fill(1);
  for (let b = 0; b < B; b++) {
    let n = 0;
    while (n < Ls) {
      const p = Math.floor(rnd() * L);
      if (refMask[b * L + p]) {
        refMask[b * L + p] = 0;
        n++;
      }
    }
  }
  const target = new Float32Array(B * L).map(() => (rnd() < 0.05 ? 1 : 0));
  return { Z, refMask, target };
}

for (const name of ["cpu", "paper"] as const) {
  const p = TRAIN_PRESETS[name];
  const cfg = parseHeadConfig({
    image_size: [3, 392, 392],
    stride: 8,
    in_chans: Cin,
    embed_dim: p.embed_dim,
    depth: p.depth,
    scan: p.scan,
    self_ratio: 0.75,
    scale_list: p.scale_list,
    residual_method: "concat_abs_square",
  });
  const weights = initHeadWeights(cfg, 0);
  if (gpu) {
    for (const B of [1, p.batch]) {
      const trainer = await GpuHeadTrainer.create(gpu, structuredClone(weights), { B, h, w });
      const inp = batch(B, 1);
      await trainer.step({ ...inp, lr: 1e-3 }); // pipelines compiled, buffers warm
      Deno.bench({
        name: `${name} preset: training step on WebGPU, B = ${B}${
          B > 1 ? ` (÷${B} per image)` : ""
        }`,
        group: `train step ${name}`,
        n: 5,
        warmup: 1,
        async fn() {
          await trainer.step({ ...inp, lr: 1e-3 });
        },
      });
    }
  }
  const one = batch(1, 2);
  Deno.bench({
    name: `${name} preset: TypeScript reference step, B = 1`,
    group: `train step ${name}`,
    baseline: true,
    n: 1,
    warmup: 0,
    fn() {
      const wr = structuredClone(weights);
      const g = headForwardBackwardRef(wr, one.Z, one.refMask, 1, h, w, one.target, {
        dropout: { p: 0.1, seed: 0 },
      });
      new AdamW(headParameters(wr), { lr: 1e-3 }).step(g.grads);
    },
  });
}
