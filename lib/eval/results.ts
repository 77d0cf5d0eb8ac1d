/**
 * The files an evaluation writes, built in one place so that an unsharded run and the merge of a
 * sharded one (`deno task merge`) write the same bytes: `results.json` (config, banks, heads,
 * per-category metrics; no timings, so the same inputs and seed give the same bytes),
 * `results.csv` (the metrics table with its mean row), `images.csv` (every test image's score)
 * and the per-category raw maps (`raw_maps/<category>.safetensors`).
 * @module
 */
import { join } from "node:path";
import * as aq from "npm:arquero@8.0.3";
import { METRIC_KEYS } from "../metrics/compute.ts";
import { formatTable, type Metrics, metricsTable } from "../metrics/mod.ts";
import { readSafeTensors, requireTensor, writeSafeTensors } from "../io/safetensors.ts";
import type { EvalResult } from "./run.ts";

/** Keys of a fit record that are timings (kept out of results.json). */
export const TIMING_KEYS: ReadonlySet<string> = new Set([
  "prepSeconds",
  "trainSeconds",
  "valSeconds",
  "seconds",
]);

/** The timing-free part of results.json that does not depend on the test images scored. */
export interface ResultsBase {
  config: Record<string, unknown>;
  adapter: string;
  banks: Array<{ name: string; T: number; numPatches: number; numCandidates: number }>;
  heads: Array<Record<string, unknown>>;
}

/** One category's line of results.json. */
export interface CategoryRecord {
  category: string;
  metrics: Metrics;
  n_test: number;
  n_defect: number;
  has_masks: boolean;
  mask_conventions: Record<string, number>;
  empty_masks: string[];
}

/** One test image's row of images.csv. */
export interface ImageRow {
  category: string;
  id: string;
  path: string;
  label: number;
  defect_type: string;
  score: number;
}

/** {@link ResultsBase} of a run. */
export function resultsBase(result: EvalResult): ResultsBase {
  return {
    config: result.config,
    adapter: result.adapter,
    banks: result.banks.map((b) => ({
      name: b.name,
      T: b.T,
      numPatches: b.meta.numPatches,
      numCandidates: b.meta.numCandidates,
    })),
    heads: result.heads.map(({ cached: _c, seconds: _s, fit, ...h }) => ({
      ...h,
      fit: fit && withoutTimings(fit),
    })),
  };
}

/**
 * A fit record without what differs between runs of the same request: the {@link TIMING_KEYS}
 * and cache hits (`cached`), at any depth (e.g. its `roots[].seconds`).
 */
function withoutTimings(v: unknown): Record<string, unknown> {
  const strip = (x: unknown): unknown =>
    Array.isArray(x) ? x.map(strip) : x && typeof x === "object"
      ? Object.fromEntries(
        Object.entries(x).filter(([k]) => !TIMING_KEYS.has(k) && k !== "cached").map((
          [k, y],
        ) => [k, strip(y)]),
      )
      : x;
  return strip(v) as Record<string, unknown>;
}

function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/**
 * Write results.json, results.csv and images.csv to `dir`; returns the printed table.
 * results.json = base + `categories` (metrics, counts, mask conventions) + `mean`.
 */
export async function writeResults(
  dir: string,
  base: ResultsBase,
  categories: CategoryRecord[],
  images: ImageRow[],
): Promise<string> {
  const table = metricsTable(categories.map((c) => ({ category: c.category, ...c.metrics })));
  const json = {
    ...base,
    categories: Object.fromEntries(categories.map((c) => [c.category, {
      ...Object.fromEntries(METRIC_KEYS.map((k) => [k, finiteOrNull(c.metrics[k])])),
      n_test: c.n_test,
      n_defect: c.n_defect,
      has_masks: c.has_masks,
      mask_conventions: c.mask_conventions,
      empty_masks: c.empty_masks,
    }])),
    mean: Object.fromEntries(METRIC_KEYS.map((k) => {
      const i = table.numRows() - 1;
      return [k, finiteOrNull(table.get(k, i) as number)];
    })),
  };
  await Deno.writeTextFile(join(dir, "results.json"), JSON.stringify(json, null, 2) + "\n");
  await Deno.writeTextFile(join(dir, "results.csv"), table.toCSV() + "\n");
  await Deno.writeTextFile(join(dir, "images.csv"), imagesCsv(images));
  return formatTable(table);
}

/** images.csv text (arquero CSV; header `category,id,path,label,defect_type,score`). */
export function imagesCsv(rows: ImageRow[]): string {
  if (!rows.length) return "category,id,path,label,defect_type,score\n";
  return aq.from(rows).toCSV() + "\n";
}

/** A category's maps as saved in `raw_maps/<category>.safetensors`. */
export interface RawMaps {
  /** `(N, S, S)` f32 anomaly maps. */
  maps: Float32Array;
  /** `(N, S, S)` u8 0/1 masks. */
  masks: Uint8Array;
  scores: Float32Array;
  labels: Uint8Array;
  ids: string[];
  paths: string[];
  defectTypes: string[];
  size: number;
}

/** Write one category's raw maps (f32, the exact values the metrics use). */
export async function writeRawMaps(path: string, r: RawMaps): Promise<void> {
  const n = r.ids.length, s = r.size;
  await writeSafeTensors(path, {
    maps: { dtype: "F32", shape: [n, s, s], data: r.maps },
    masks: { dtype: "U8", shape: [n, s, s], data: r.masks },
    scores: { dtype: "F32", shape: [n], data: r.scores },
    labels: { dtype: "U8", shape: [n], data: r.labels },
  }, {
    ids: JSON.stringify(r.ids),
    paths: JSON.stringify(r.paths),
    defect_types: JSON.stringify(r.defectTypes),
  });
}

/**
 * Read raw maps written by {@link writeRawMaps}.
 * @throws {SafeTensorsError} naming the file and the tensor when malformed.
 */
export async function readRawMaps(path: string): Promise<RawMaps> {
  const st = await readSafeTensors(path);
  const scores = requireTensor(st, "scores", "F32", [-1], path).data as Float32Array;
  const n = scores.length;
  const maps = requireTensor(st, "maps", "F32", [n, -1, -1], path);
  const s = maps.shape[1];
  return {
    maps: maps.data as Float32Array,
    masks: requireTensor(st, "masks", "U8", [n, s, s], path).data as Uint8Array,
    scores,
    labels: requireTensor(st, "labels", "U8", [n], path).data as Uint8Array,
    ids: JSON.parse(st.metadata.ids ?? "[]"),
    paths: JSON.parse(st.metadata.paths ?? "[]"),
    defectTypes: JSON.parse(st.metadata.defect_types ?? "[]"),
    size: s,
  };
}
