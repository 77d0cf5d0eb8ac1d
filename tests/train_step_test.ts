/**
 * Tests of the whole training step on the adapter (lib/train/gpu/head_train.ts) and of
 * `runTraining` (lib/train/run.ts): the GPU step's loss and every parameter gradient against the
 * float64 TypeScript reference (`headForwardBackwardRef`), the AdamW update against the TS AdamW,
 * a short deterministic run on real images that lowers the loss, bit-identical resume from a
 * checkpoint, and clear errors for bad input.
 */
import assert from "node:assert/strict";
import { gpuTest, requireGpu } from "./_gpu.ts";
import { parseHeadConfig } from "../lib/model/config.ts";
import { headForwardBackwardRef, headParameters } from "../lib/train/backward_ref.ts";
import { AdamW } from "../lib/train/adamw.ts";
import { GpuHeadTrainer } from "../lib/train/gpu/head_train.ts";
import { initHeadWeights } from "../lib/train/init.ts";
import { mulberry32 } from "../lib/ops/pointwise.ts";
import { prepareTrainingSet, type TrainingSet } from "../lib/train/samples.ts";
import { runTraining, TRAIN_PRESETS } from "../lib/train/run.ts";
import { loadCheckpoint } from "../lib/train/checkpoint.ts";
import { readSafeTensors, writeSafeTensors } from "../lib/io/safetensors.ts";
import { loadHead } from "../lib/model/head.ts";

const DATA = new URL("../data/hazelnut_toy", import.meta.url).pathname;

function tinyConfig(depth: number, scan = 4) {
  return parseHeadConfig({
    image_size: [3, 48, 48],
    stride: 8,
    in_chans: 16,
    embed_dim: 8,
    depth,
    scan,
    self_ratio: 0.75,
    scale_list: [1, 2],
    residual_method: "concat_abs_square",
  });
}

function randomBatch(B: number, Cin: number, L: number, Ls: number, seed: number) {
  const rnd = mulberry32(seed);
  const Z = new Float32Array(B * Cin * L).map(() => rnd() * 2 - 1);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < Cin / 2; c++) {
      for (let p = 0; p < L; p++) Z[(b * Cin + c) * L + p] = Math.abs(Z[(b * Cin + c) * L + p]);
    }
  }
  const refMask = new Uint8Array(B * L).fill(1);
  for (let b = 0; b < B; b++) {
    const order = Array.from({ length: L }, (_, i) => i).sort(() => rnd() - 0.5);
    for (let j = 0; j < Ls; j++) refMask[b * L + order[j]] = 0;
  }
  const target = new Float32Array(B * L).map(() => (rnd() < 0.2 ? rnd() : 0));
  return { Z, refMask, target };
}

for (const [depth, scan] of [[1, 4], [2, 4], [1, 1]]) {
  Deno.test({
    name:
      `GPU training step (depth ${depth}, scan ${scan}): loss, every gradient and the AdamW update match the float64 reference`,
    ...gpuTest,
    async fn() {
      const gpu = requireGpu();
      const cfg = tinyConfig(depth, scan);
      const w0 = initHeadWeights(cfg, 3);
      // Non-trivial BatchNorm / norm parameters so every gradient path is exercised.
      const rnd = mulberry32(9);
      for (const [name, a] of headParameters(w0)) {
        if (/norm|D$/.test(name)) {
          for (let i = 0; i < a.length; i++) a[i] += (rnd() - 0.5) * 0.4;
        }
      }
      const B = 2, h = 6, w = 6, L = h * w, Ls = L - Math.round(0.75 * L);
      const { Z, refMask, target } = randomBatch(B, cfg.in_chans, L, Ls, 5);
      const ref = headForwardBackwardRef(w0, Z, refMask, B, h, w, target, {});
      const tr = await GpuHeadTrainer.create(gpu, structuredClone(w0), { B, h, w, dropout: 0 });
      try {
        const lr = 1e-2;
        const l = await tr.step({ Z, refMask, target, lr });
        assert.ok(
          Math.abs(l.loss - ref.loss) <= 1e-5 * (1 + ref.loss),
          `loss ${l.loss} vs ${ref.loss}`,
        );
        assert.ok(Math.abs(l.unaryLoss - ref.unaryLoss) <= 1e-5 * (1 + ref.unaryLoss));
        const grads = await tr.grads();
        let worst = 0, worstName = "";
        for (const [name, g] of ref.grads) {
          const got = grads.get(name);
          assert.ok(got, `no GPU gradient for ${name}`);
          let scale = 0;
          for (const v of g) scale = Math.max(scale, Math.abs(v));
          let err = 0;
          for (let i = 0; i < g.length; i++) err = Math.max(err, Math.abs(got[i] - g[i]));
          const rel = err / (scale + 1e-6);
          if (rel > worst) [worst, worstName] = [rel, name];
        }
        console.log(`  max relative gradient error ${worst.toExponential(2)} (${worstName})`);
        assert.ok(worst <= 2e-3, `gradient of ${worstName}: relative error ${worst}`);
        // AdamW on the reference gradients vs the GPU update.
        const wRef = structuredClone(w0);
        const opt = new AdamW(headParameters(wRef), { lr });
        opt.step(ref.grads, lr);
        const wGpu = await tr.weights();
        const pg = headParameters(wGpu);
        let upd = 0;
        for (const [name, a] of headParameters(wRef)) {
          const b = pg.get(name)!;
          for (let i = 0; i < a.length; i++) upd = Math.max(upd, Math.abs(a[i] - b[i]));
        }
        // Adam normalises each gradient, so f32 noise in a near-zero gradient moves its step most:
        // allow 10% of lr (a sign flip would be 2·lr).
        console.log(
          `  max |Δ weight| GPU vs reference after one AdamW step: ${upd.toExponential(2)}`,
        );
        assert.ok(upd <= 0.1 * lr, `AdamW update differs by ${upd}`);
        for (const [k, v] of ref.runningStats) {
          const j = Number(k.split(".")[1]);
          const hd = wGpu.heads[j];
          const got = k.endsWith("mean") ? hd.bnMean : hd.bnVar;
          for (let i = 0; i < v.length; i++) {
            assert.ok(Math.abs(got[i] - v[i]) <= 1e-5 * (1 + Math.abs(v[i])), k);
          }
        }
      } finally {
        tr.destroy();
      }
    },
  });
}

let shared: TrainingSet | null = null;
let sharedVal: TrainingSet | null = null;
/** {@link smallSet} with 30 % of the images held out for validation. */
async function smallValSet(): Promise<TrainingSet> {
  sharedVal ??= await prepareTrainingSet({
    roots: [DATA],
    imageSize: 64,
    bankSize: 300,
    maxImages: 6,
    synthPerImage: 1,
    seed: 1,
    cacheDir: null,
    progress: false,
    valFraction: 0.3,
  });
  return sharedVal;
}

async function smallSet(): Promise<TrainingSet> {
  shared ??= await prepareTrainingSet({
    roots: [DATA],
    imageSize: 64,
    bankSize: 300,
    maxImages: 6,
    synthPerImage: 1,
    seed: 1,
    cacheDir: null,
    progress: false,
  });
  return shared;
}

Deno.test({
  name: "training on real hazelnut samples: 40 deterministic steps lower the loss by at least 30%",
  ...gpuTest,
  async fn() {
    requireGpu();
    const set = await smallSet();
    assert.equal(set.samples.length, 12);
    assert.equal(set.samples.filter((s) => s.synthetic).length, 6);
    assert.ok(set.samples.filter((s) => s.synthetic).every((s) => s.target.some((v) => v > 0)));
    const out = await Deno.makeTempDir({ prefix: "snarm_train_" });
    try {
      const r = await runTraining({
        data: [DATA],
        out,
        trainingSet: set,
        steps: 40,
        batch: 2,
        lr: 3e-3,
        seed: 2,
        progress: false,
        checkpointEvery: 40,
      });
      const first = r.losses.slice(0, 5).reduce((a, b) => a + b) / 5;
      const last = r.losses.slice(-5).reduce((a, b) => a + b) / 5;
      console.log(
        `  mean loss of steps 1–5 ${first.toFixed(4)}, of steps 36–40 ${last.toFixed(4)}`,
      );
      assert.ok(last <= 0.7 * first, `loss ${first} → ${last}: not lowered by 30%`);
      const head = await loadHead(r.headPath);
      assert.equal(head.config.embed_dim, TRAIN_PRESETS.cpu.embed_dim);
      const csv = (await Deno.readTextFile(r.lossCsv)).trim().split("\n");
      assert.equal(csv.length, 41);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "checkpoint → resume continues bit-identically; a checkpoint of another config is refused",
  ...gpuTest,
  async fn() {
    requireGpu();
    const set = await smallSet();
    const a = await Deno.makeTempDir({ prefix: "snarm_resume_a_" });
    const b = await Deno.makeTempDir({ prefix: "snarm_resume_b_" });
    const common = {
      data: [DATA],
      trainingSet: set,
      steps: 6,
      batch: 2,
      lr: 3e-3,
      seed: 4,
      progress: false,
      checkpointEvery: 3,
    };
    try {
      const full = await runTraining({ ...common, out: a });
      const part = await runTraining({ ...common, out: b, stopAfter: 3 });
      assert.equal(part.step, 3);
      assert.equal(part.headWritten, false);
      const rest = await runTraining({ ...common, out: b, resume: true });
      assert.equal(rest.stepsThisRun, 3);
      assert.deepEqual(rest.losses, full.losses.slice(3));
      const ca = await loadCheckpoint(full.checkpointPath),
        cb = await loadCheckpoint(rest.checkpointPath);
      assert.equal(cb.step, 6);
      const pa = headParameters(ca.weights), pb = headParameters(cb.weights);
      for (const [name, x] of pa) {
        assert.deepEqual(new Uint32Array(pb.get(name)!.buffer), new Uint32Array(x.buffer), name);
      }
      assert.deepEqual(cb.optim.m, ca.optim.m);
      assert.deepEqual(cb.optim.v, ca.optim.v);
      const csv = (await Deno.readTextFile(rest.lossCsv)).trim().split("\n");
      assert.equal(csv.length, 7);
      const secs = csv.slice(1).map((l) => Number(l.split(",")[5]));
      assert.ok(
        secs.every((v, i) => i === 0 || v >= secs[i - 1]),
        `seconds not cumulative: ${secs}`,
      );
      await assert.rejects(
        runTraining({ ...common, out: b, resume: true, preset: "paper" }),
        /another configuration[\s\S]*preset/,
      );
      await assert.rejects(
        runTraining({ ...common, out: b, resume: true, lr: 1e-2 }),
        /another configuration[\s\S]*lr/,
      );
      // A finished run: nothing to resume; a fresh run may not overwrite it.
      await assert.rejects(
        runTraining({ ...common, out: b, resume: true }),
        /already at step 6 of 6; nothing to do/,
      );
      await assert.rejects(runTraining({ ...common, out: b }), /already holds a training run/);
      // A tampered checkpoint is refused with the file and the key.
      const st = await readSafeTensors(rest.checkpointPath);
      const tensors = st.tensors;
      await writeSafeTensors(`${b}/checkpoint.safetensors`, tensors, {
        ...st.metadata,
        step: "abc",
      });
      await assert.rejects(
        loadCheckpoint(`${b}/checkpoint.safetensors`),
        /__metadata__\.step = "abc"/,
      );
    } finally {
      await Deno.remove(a, { recursive: true });
      await Deno.remove(b, { recursive: true });
    }
  },
});

Deno.test({
  name: "training input errors: a root without train/good, no checkpoint to resume, bad flags",
  ...gpuTest,
  async fn() {
    requireGpu();
    const empty = await Deno.makeTempDir({ prefix: "snarm_empty_" });
    await Deno.mkdir(`${empty}/widget/test/good`, { recursive: true });
    const out = await Deno.makeTempDir({ prefix: "snarm_out_" });
    try {
      await assert.rejects(
        prepareTrainingSet({ roots: [empty], progress: false, cacheDir: null }),
        /train\/good|no category/,
      );
      const set = await smallSet();
      await assert.rejects(
        runTraining({
          data: [DATA],
          out,
          trainingSet: set,
          steps: 2,
          resume: true,
          progress: false,
        }),
        /no checkpoint/,
      );
      await assert.rejects(
        runTraining({ data: [DATA], out, trainingSet: set, steps: 0, progress: false }),
        /steps must be a positive integer/,
      );
      await assert.rejects(
        runTraining({
          data: [DATA],
          out,
          trainingSet: set,
          steps: 2,
          preset: "huge" as "cpu",
          progress: false,
        }),
        /preset must be "cpu" or "paper", got "huge"/,
      );
      const base = { data: [DATA], out, trainingSet: set, steps: 2, progress: false };
      await assert.rejects(runTraining({ ...base, dropout: 1.5 }), /dropout must be in \[0, 1\)/);
      await assert.rejects(
        runTraining({ ...base, maxImages: 0 }),
        /maxImages must be a positive/,
      );
      await assert.rejects(runTraining({ ...base, seed: -1 }), /seed must be a non-negative/);
      const file = `${out}/a-file`;
      await Deno.writeTextFile(file, "x");
      await assert.rejects(runTraining({ ...base, out: file }), /exists and is not a folder/);
    } finally {
      await Deno.remove(empty, { recursive: true });
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "sample cache: written in shards, read back identical, options change the cache file",
  ...gpuTest,
  async fn() {
    requireGpu();
    const dir = await Deno.makeTempDir({ prefix: "snarm_cache_" });
    const opts = {
      roots: [DATA],
      imageSize: 64,
      bankSize: 300,
      maxImages: 6,
      synthPerImage: 1,
      seed: 1,
      cacheDir: dir,
      cacheShard: 5,
      progress: false,
    };
    try {
      const a = await prepareTrainingSet(opts);
      const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assert.equal(files.length, 3, `12 samples in shards of 5: ${files}`);
      const b = await prepareTrainingSet(opts);
      assert.ok(b.roots[0].cached && !a.roots[0].cached);
      assert.equal(b.samples.length, a.samples.length);
      b.samples.forEach((s, i) => {
        assert.equal(s.id, a.samples[i].id);
        assert.equal(s.synthetic, a.samples[i].synthetic);
        assert.deepEqual(new Uint16Array(s.X.buffer), new Uint16Array(a.samples[i].X.buffer));
        assert.deepEqual(s.target, a.samples[i].target);
      });
      // Another option → another cache file (not a mismatch error).
      const c = await prepareTrainingSet({ ...opts, synthPerImage: 0 });
      assert.equal(c.samples.length, 6);
      assert.equal([...Deno.readDirSync(dir)].length, 5);
      // With held-out validation images: the cached set reports the same training images as the
      // fresh one (the cache once stored training + validation images as `selected`).
      const v1 = await prepareTrainingSet({ ...opts, synthPerImage: 0, valFraction: 0.3 });
      const v2 = await prepareTrainingSet({ ...opts, synthPerImage: 0, valFraction: 0.3 });
      assert.ok(v2.roots[0].cached && v1.val.length > 0);
      assert.equal(v1.roots[0].selected, v1.samples.length);
      assert.equal(v2.roots[0].selected, v1.roots[0].selected);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "early stop: the run reports the step it stopped at; a resume of it has nothing to do",
  ...gpuTest,
  async fn() {
    requireGpu();
    const set = await smallValSet();
    assert.ok(set.val.length > 0);
    const out = await Deno.makeTempDir({ prefix: "snarm_early_stop_" });
    const common = {
      data: [DATA],
      out,
      trainingSet: set,
      steps: 40,
      batch: 2,
      lr: 3e-3,
      seed: 3,
      progress: false,
      valEvery: 1,
      valFraction: 0.3,
      patience: 1,
    };
    try {
      const r = await runTraining(common);
      const json = JSON.parse(await Deno.readTextFile(`${out}/train.json`));
      // 40 validations each strictly better than the last would be needed to run to the end
      assert.ok(json.stoppedEarlyAt !== null && json.stoppedEarlyAt < 40, JSON.stringify(json));
      assert.equal(r.step, json.stoppedEarlyAt);
      assert.equal(json.step, json.stoppedEarlyAt);
      assert.equal(r.stepsThisRun, json.stoppedEarlyAt);
      assert.equal(r.headWritten, true);
      await assert.rejects(() => runTraining({ ...common, resume: true }), /stopped early at step/);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "resume with validation: the resumed run chooses the same best head, byte for byte",
  ...gpuTest,
  async fn() {
    requireGpu();
    const set = await smallValSet();
    const a = await Deno.makeTempDir({ prefix: "snarm_resume_val_a_" });
    const b = await Deno.makeTempDir({ prefix: "snarm_resume_val_b_" });
    const common = {
      data: [DATA],
      trainingSet: set,
      steps: 8,
      batch: 2,
      lr: 3e-3,
      seed: 5,
      progress: false,
      valEvery: 1,
      valFraction: 0.3,
      checkpointEvery: 4,
    };
    try {
      const full = await runTraining({ ...common, out: a });
      await runTraining({ ...common, out: b, stopAfter: 4 });
      const rest = await runTraining({ ...common, out: b, resume: true });
      assert.equal(rest.bestStep, full.bestStep);
      assert.deepEqual(
        rest.validation.map((v) => [v.step, v.score]),
        full.validation.map((v) => [v.step, v.score]),
      );
      assert.deepEqual(
        await Deno.readFile(`${b}/head.safetensors`),
        await Deno.readFile(`${a}/head.safetensors`),
      );
      // the resume state is gone once the head is written
      for (const f of ["best.safetensors", "validation.json"]) {
        await assert.rejects(() => Deno.stat(`${b}/${f}`));
      }
    } finally {
      await Deno.remove(a, { recursive: true });
      await Deno.remove(b, { recursive: true });
    }
  },
});
