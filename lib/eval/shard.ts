/**
 * Sharded evaluation: `deno task eval --shard I/N` scores the I-th of N disjoint parts of the test
 * images (lib/eval/run.ts `shardSplits`) and writes `shard.json` + `raw_maps/` + `images.csv`;
 * {@link mergeShards} checks that N parts are complete, disjoint and of one request, concatenates
 * their exact f32 maps in the original order and computes the metrics — identical to an
 * unsharded run, since the metrics see the same values in the same order.
 * @module
 */
import { join } from "node:path";
import { computeMetrics } from "../metrics/compute.ts";
import {
  type CategoryRecord,
  type ImageRow,
  type RawMaps,
  readRawMaps,
  type ResultsBase,
} from "./results.ts";

/** `shard.json` format tag. */
export const SHARD_FORMAT = "snarm-shard/1";

/** What a shard writes to `shard.json`. */
export interface ShardManifest {
  format: string;
  /** Digest of the run's options except --out and the shard index (equal across the parts). */
  request: string;
  shard: { index: number; count: number };
  /** Test images per category in the whole (unsharded) run. */
  totals: Record<string, number>;
  /** The timing-free results.json head (config, adapter, banks, heads). */
  base: ResultsBase;
  /** The categories this part scored (those with images in it). */
  categories: Array<Omit<CategoryRecord, "metrics">>;
}

/** Raised for incomplete, overlapping or mismatched shards, naming the folder. */
export class ShardError extends Error {
  override name = "ShardError";
}

/**
 * Read `dir/shard.json`.
 * @throws {ShardError} naming the folder when it is missing or not a shard manifest.
 */
export async function readShardManifest(dir: string): Promise<ShardManifest> {
  let m: ShardManifest;
  try {
    m = JSON.parse(await Deno.readTextFile(join(dir, "shard.json")));
  } catch (e) {
    throw new ShardError(
      `${dir}: no readable shard.json (${(e as Error).message}); is it the \`out\` of a finished ` +
        "part of a sharded eval (`shard` I/N)?",
    );
  }
  if (m?.format !== SHARD_FORMAT || !m.shard || !m.totals || !m.base) {
    throw new ShardError(`${dir}/shard.json: not a ${SHARD_FORMAT} manifest`);
  }
  return m;
}

/** The merged run: what results.json/csv and images.csv are written from. */
export interface MergedResults {
  base: ResultsBase;
  categories: CategoryRecord[];
  images: ImageRow[];
  count: number;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Merge the output folders of the N parts of one sharded run.
 * @throws {ShardError} naming the folder: a missing part (by index), a part given twice, parts of
 * different requests, banks or heads (config, bank, head or count differ), a part whose image
 * count does not match the split, or unreadable raw maps.
 * @param onCategory receives each category's merged raw maps (e.g. to write them).
 */
export async function mergeShards(
  dirs: string[],
  onCategory?: (category: string, raw: RawMaps) => Promise<void>,
): Promise<MergedResults> {
  if (!dirs.length) throw new ShardError("merge: no shard folders given");
  const parts = await Promise.all(
    dirs.map(async (d) => ({ dir: d, m: await readShardManifest(d) })),
  );
  const first = parts[0];
  const n = first.m.shard.count;
  const byIndex = new Map<number, { dir: string; m: ShardManifest }>();
  for (const p of parts) {
    const { index, count } = p.m.shard;
    if (count !== n) {
      throw new ShardError(
        `${p.dir}: shard ${index}/${count} is from a split into ${count} parts, ${first.dir} into ${n}`,
      );
    }
    if (p.m.request !== first.m.request) {
      let diff = "data, method, head, bank or settings";
      try {
        const a = JSON.parse(p.m.request), b = JSON.parse(first.m.request);
        const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])]
          .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
        if (keys.length) diff = keys.join(", ");
      } catch { /* an older manifest */ }
      throw new ShardError(
        `${p.dir}: shard ${index}/${count} was run with other settings than ${first.dir} ` +
          `(${diff} differ${diff.includes(",") ? "" : "s"})`,
      );
    }
    for (const k of ["config", "banks", "heads", "adapter"] as const) {
      if (!sameJson(p.m.base[k], first.m.base[k])) {
        throw new ShardError(
          `${p.dir}: shard ${index}/${count} used another ${
            k.replace(/s$/, "")
          } than ${first.dir}` +
            (k === "banks" ? " (pass the same `loadBankPath` to every shard)" : ""),
        );
      }
    }
    if (!sameJson(p.m.totals, first.m.totals)) {
      throw new ShardError(
        `${p.dir}: shard ${index}/${count} saw another test set than ${first.dir}`,
      );
    }
    if (byIndex.has(index)) {
      throw new ShardError(
        `${p.dir}: shard ${index}/${count} given twice (also ${byIndex.get(index)!.dir})`,
      );
    }
    byIndex.set(index, p);
  }
  const missing = [...Array(n).keys()].filter((i) => !byIndex.has(i));
  if (missing.length) {
    throw new ShardError(
      `shard(s) ${missing.map((i) => `${i}/${n}`).join(", ")} missing (have ${
        [...byIndex.keys()].sort((a, b) => a - b).map((i) => `${i}/${n}`).join(", ")
      })`,
    );
  }
  const categories: CategoryRecord[] = [];
  const images: ImageRow[] = [];
  for (const [category, total] of Object.entries(first.m.totals)) {
    const chunks = [];
    for (let i = 0; i < n; i++) {
      const p = byIndex.get(i)!;
      const rec = p.m.categories.find((c) => c.category === category);
      if (!rec) continue;
      const path = join(p.dir, "raw_maps", `${category}.safetensors`);
      const raw = await readRawMaps(path).catch((e) => {
        throw new ShardError(`${p.dir}: raw maps of ${category} unreadable: ${e.message}`);
      });
      if (raw.ids.length !== rec.n_test) {
        throw new ShardError(`${path}: ${raw.ids.length} images, shard.json says ${rec.n_test}`);
      }
      chunks.push({ raw, rec });
    }
    const count = chunks.reduce((a, c) => a + c.raw.ids.length, 0);
    if (count !== total) {
      throw new ShardError(
        `merge: ${category} has ${count} test images over the shards, the split has ${total}`,
      );
    }
    const size = chunks[0].raw.size, px = size * size;
    const maps = new Float32Array(count * px), masks = new Uint8Array(count * px);
    const scores = new Float32Array(count), labels = new Uint8Array(count);
    let o = 0;
    const conventions: Record<string, number> = {};
    const empty: string[] = [];
    const ids: string[] = [], paths: string[] = [], defectTypes: string[] = [];
    for (const { raw, rec } of chunks) {
      maps.set(raw.maps, o * px);
      masks.set(raw.masks, o * px);
      scores.set(raw.scores, o);
      labels.set(raw.labels, o);
      for (let i = 0; i < raw.ids.length; i++) {
        images.push({
          category,
          id: raw.ids[i],
          path: raw.paths[i],
          label: raw.labels[i],
          defect_type: raw.defectTypes[i],
          score: raw.scores[i],
        });
      }
      for (const [k, v] of Object.entries(rec.mask_conventions)) {
        conventions[k] = (conventions[k] ?? 0) + v;
      }
      empty.push(...rec.empty_masks);
      ids.push(...raw.ids);
      paths.push(...raw.paths);
      defectTypes.push(...raw.defectTypes);
      o += raw.ids.length;
    }
    await onCategory?.(category, { maps, masks, scores, labels, ids, paths, defectTypes, size });
    const hasMasks = chunks[0].rec.has_masks;
    const metrics = computeMetrics({
      imageScores: scores,
      imageLabels: labels,
      ...(hasMasks ? { pixelScores: maps, pixelMasks: masks, shape: [count, size, size] } : {}),
    });
    categories.push({
      category,
      metrics,
      n_test: count,
      n_defect: labels.reduce((a, b) => a + b, 0),
      has_masks: hasMasks,
      // Keys in first-seen order over the parts in order = the unsharded run's order.
      mask_conventions: conventions,
      empty_masks: empty,
    });
  }
  return { base: first.m.base, categories, images, count: n };
}
