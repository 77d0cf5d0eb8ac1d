/**
 * A head trained here loads into the official PyTorch model (issue #12 item 4): a head written by
 * this toolkit (initialised for a config, as `deno task train` starts, then saved) has exactly the
 * tensor names, dtypes and shapes of the official state dict of that config — the official
 * fixtures `tiny` and `paper` (`../shared/fixtures/snarm_official/*\/weights.safetensors`, written
 * from `model.state_dict()`).
 */
import assert from "node:assert/strict";
import { readSafeTensors } from "../lib/io/safetensors.ts";
import { configFromMetadata } from "../lib/model/config.ts";
import { saveHeadWeights } from "../lib/model/weights.ts";
import { initHeadWeights } from "../lib/train/init.ts";

for (const name of ["tiny", "paper"]) {
  Deno.test(`head export: a head written here has the official state-dict names and shapes (${name})`, async () => {
    const official = await readSafeTensors(
      new URL(`../../shared/fixtures/snarm_official/${name}/weights.safetensors`, import.meta.url),
    );
    const cfg = configFromMetadata(official.metadata, name);
    const path = await Deno.makeTempFile({ suffix: ".safetensors" });
    try {
      await saveHeadWeights(path, initHeadWeights(cfg, 0));
      const ours = await readSafeTensors(path);
      const sig = (st: typeof ours) =>
        [...st.tensors].map(([k, t]) => `${k} ${t.dtype} [${t.shape}]`).sort();
      assert.deepEqual(sig(ours), sig(official));
      assert.ok(ours.tensors.size > 100);
    } finally {
      await Deno.remove(path);
    }
  });
}
