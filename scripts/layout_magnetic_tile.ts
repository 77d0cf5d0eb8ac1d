/**
 * Re-lay the raw magnetic-tile defect dataset (github.com/abin24/Magnetic-tile-defect-datasets.,
 * folders `MT_<Type>/Imgs/*.jpg` with `*.png` masks) into the MVTec AD layout `deno task eval`
 * reads, as the benchmark copy used in this project's results was made:
 *
 * - `MT_Free/Imgs/*.jpg` sorted by name: every 5th (index % 5 == 4) → `test/good`, the rest →
 *   `train/good`;
 * - `MT_<Defect>/Imgs/X.jpg` → `test/<defect>/X.jpg`, `X.png` → `ground_truth/<defect>/X_mask.png`
 *   (defect names lower-cased).
 *
 * Files are copied, never modified.
 *
 * Usage: `deno run -A scripts/layout_magnetic_tile.ts RAW_DIR OUT_DIR` (OUT_DIR/magnetic_tile is
 * the category folder; then `deno task eval --data OUT_DIR --no-crop`).
 * @module
 */
import { join } from "node:path";

/** Copy the raw dataset at `raw` into MVTec layout under `out/magnetic_tile`; returns counts. */
export async function layoutMagneticTile(
  raw: string,
  out: string,
): Promise<Record<string, number>> {
  const cat = join(out, "magnetic_tile");
  const counts: Record<string, number> = {};
  const add = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
  const dirs = [...Deno.readDirSync(raw)].filter((e) => e.isDirectory && /^MT_/.test(e.name))
    .map((e) => e.name).sort();
  if (!dirs.includes("MT_Free")) {
    throw new Error(
      `${raw}: no MT_Free folder; expected the raw magnetic-tile dataset (MT_*/Imgs)`,
    );
  }
  for (const d of dirs) {
    const imgs = join(raw, d, "Imgs");
    const names = [...Deno.readDirSync(imgs)].map((e) => e.name).filter((n) => /\.jpg$/i.test(n))
      .sort();
    const type = d.slice(3).toLowerCase();
    for (let i = 0; i < names.length; i++) {
      const n = names[i];
      let dst: string;
      if (type === "free") {
        dst = join(cat, i % 5 === 4 ? "test" : "train", "good", n);
        add(i % 5 === 4 ? "test/good" : "train/good");
      } else {
        dst = join(cat, "test", type, n);
        const mask = join(imgs, n.replace(/\.jpg$/i, ".png"));
        const mdst = join(cat, "ground_truth", type, n.replace(/\.jpg$/i, "_mask.png"));
        await Deno.mkdir(join(mdst, ".."), { recursive: true });
        await Deno.copyFile(mask, mdst);
        add(`test/${type}`);
      }
      await Deno.mkdir(join(dst, ".."), { recursive: true });
      await Deno.copyFile(join(imgs, n), dst);
    }
  }
  return counts;
}

if (import.meta.main) {
  const [raw, out] = Deno.args;
  if (!raw || !out) {
    console.error("usage: deno run -A scripts/layout_magnetic_tile.ts RAW_DIR OUT_DIR");
    Deno.exit(2);
  }
  try {
    console.log(JSON.stringify(await layoutMagneticTile(raw, out), null, 2));
  } catch (e) {
    console.error(`layout_magnetic_tile: error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
