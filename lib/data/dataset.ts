/**
 * Dataset enumeration for the layouts SNARM's preprocessors read (spec §11) and two more that
 * users' data comes in (MVTec 3D-AD RGB, Folder):
 *
 * **MVTec AD layout** (also MVTec-style copies such as `magnetic_tile`, `hazelnut_toy`):
 * ```
 * <root>/<category>/train/good/*            normal training images
 * <root>/<category>/test/<type>/*           test images; <type> "good" = normal (label 0)
 * <root>/<category>/ground_truth/<type>/<stem>_mask.png   masks of defect images
 * ```
 * (`<stem>.png` in the same folder is accepted when `<stem>_mask.png` is absent.)
 * A category without any `ground_truth/` folder is allowed: its defect records get
 * `maskPath: null` and the split `hasMasks: false`, so evaluation can skip pixel metrics.
 *
 * **VisA 1cls split CSV** (`<root>/split_csv/1cls.csv`, detected automatically, or any CSV passed as
 * `opts.csv`): header `object,split,label,image,mask`; `label` is `normal` / `anomaly`; `image` and
 * `mask` are paths relative to `<root>`. Raw VisA masks are label maps (0 = background), so these
 * records use mask rule `"nonzero"`. Anomalous records get `defectType: "anomaly"`.
 *
 * **MVTec 3D-AD** (detected by `<category>/train/good/rgb/`): RGB images only, masks in
 * `test/<type>/gt/`; `validation/good/rgb` used as extra normals with `validationAsTrain`.
 *
 * **Folder** (anomalib's format; detected when the root holds one `good`/`normal`/`ok` folder,
 * other image folders (anomalous) and at most one `mask`/`masks`/`ground_truth`/`gt` folder, or
 * given as {@link FolderSpec}): normals split into train/test, seeded.
 *
 * Image files are those with an image extension (png, jpg, jpeg, bmp, tif, tiff, webp, gif, any
 * case; hidden files skipped). Their content format is checked only when decoded, so e.g. a BMP
 * fails loudly at load time instead of being skipped. Records are sorted by defect type, then
 * file name in natural order (digit runs compared as numbers), so the order is deterministic.
 * @module
 */

import type { MaskRule } from "./preprocess.ts";
import { mulberry32 } from "../util/rng.ts";

/** Raised for a wrong root, an empty category, a missing mask, or a malformed split CSV. */
export class DatasetError extends Error {
  /** Error name. */
  override name = "DatasetError";
}

/** One image of a split. */
export interface ImageRecord {
  /** Image file path (root joined with the relative path). */
  path: string;
  /** Category (class) name, e.g. `"hazelnut"`. */
  category: string;
  /** Which split the record belongs to. */
  split: "train" | "test";
  /** Folder name under `test/` (`"good"` for normal images); `"anomaly"` for VisA CSV anomalies. */
  defectType: string;
  /** 0 = good / normal, 1 = defective / anomaly. */
  label: 0 | 1;
  /** Ground-truth mask path for defective images; null for good images and mask-less datasets. */
  maskPath: string | null;
  /** How the mask file is binarised (see {@link MaskRule}). */
  maskRule: MaskRule;
  /** Stable identifier `<split>/<defectType>/<file stem>`, e.g. `"test/colour/00"`. */
  id: string;
}

/** A category's train and test records. */
export interface DatasetSplit {
  /** Dataset root as given. */
  root: string;
  /** Category name. */
  category: string;
  /** Layout the records were read from. */
  layout: "mvtec" | "mvtec3d" | "visa-csv" | "folder";
  /** Normal training images (train/good), sorted. */
  train: ImageRecord[];
  /** Test images of all types, sorted by type then name. */
  test: ImageRecord[];
  /** Every defect test record has a mask (false: no ground truth shipped; skip pixel metrics). */
  hasMasks: boolean;
}

/** Options: an explicit VisA-style split CSV (else `<root>/split_csv/1cls.csv` when present). */
export interface DatasetOptions {
  /** Path of a VisA-style split CSV (`object,split,label,image,mask`). */
  csv?: string;
  /** MVTec 3D-AD: also use `validation/good/rgb` as normal training images (default false). */
  validationAsTrain?: boolean;
  /** Folder layout given explicitly (else detected under the root, see {@link FolderSpec}). */
  folder?: FolderSpec;
}

/**
 * A Folder dataset (anomalib's "Folder" format): a folder of normal images, folders of anomalous
 * ones, optionally a mask folder (masks matched by file stem, `<stem>_mask.*` or `<stem>.*`).
 * The normal images are split into train and test, seeded: `splitRatio` of them (default 0.2,
 * at least one) go to the test set.
 */
export interface FolderSpec {
  normalDir: string;
  abnormalDirs: string[];
  maskDir?: string | null;
  /** Fraction of the normal images held out for testing (default 0.2). */
  splitRatio?: number;
  /** Seed of the normal split (default 0). */
  seed?: number;
  /** Category name (default: the name of the folder holding `normalDir`). */
  category?: string;
}

const NORMAL_NAMES = ["good", "normal", "ok"];
const MASK_NAMES = ["mask", "masks", "ground_truth", "gt"];

/**
 * The Folder layout of `root`, when unambiguous: no MVTec-style category, one normal folder
 * (`good`, `normal` or `ok`), at least one other image folder (anomalous), and optionally one
 * mask folder (`mask`, `masks`, `ground_truth` or `gt`). Null otherwise.
 */
export function detectFolderLayout(root: string): FolderSpec | null {
  if (!isDir(root)) return null;
  const dirs = listDirs(root);
  if (dirs.some((d) => isDir(join(root, d, "train")) || isDir(join(root, d, "test")))) return null;
  if (dirs.includes("train") || dirs.includes("test")) return null;
  const normal = dirs.filter((d) => NORMAL_NAMES.includes(d.toLowerCase()));
  const masks = dirs.filter((d) => MASK_NAMES.includes(d.toLowerCase()));
  const abnormal = dirs.filter((d) =>
    !normal.includes(d) && !masks.includes(d) && listImages(join(root, d)).length > 0
  );
  if (normal.length !== 1 || masks.length > 1 || abnormal.length === 0) return null;
  return {
    normalDir: join(root, normal[0]),
    abnormalDirs: abnormal.map((d) => join(root, d)),
    maskDir: masks.length ? join(root, masks[0]) : null,
  };
}

const IMAGE_EXT = /\.(png|jpe?g|bmp|tiff?|webp|gif)$/i;
const LAYOUT_HINT =
  "expected <root>/<category>/train/good/* (MVTec AD layout) or <root>/split_csv/1cls.csv (VisA)";

/** Join path parts with "/" (no normalisation beyond trimming duplicate separators). */
function join(...parts: string[]): string {
  return parts.filter((p) => p !== "").join("/").replace(/\/{2,}/g, "/");
}

function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch {
    return null;
  }
}

function isDir(path: string): boolean {
  return statOrNull(path)?.isDirectory ?? false;
}

function isFile(path: string): boolean {
  return statOrNull(path)?.isFile ?? false;
}

/** Natural-order comparison: digit runs compare by value, the rest by code point. */
export function naturalCompare(a: string, b: string): number {
  const ra = a.match(/\d+|\D+/g) ?? [];
  const rb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
    const x = ra[i];
    const y = rb[i];
    if (x === y) continue;
    const dx = /^\d/.test(x);
    const dy = /^\d/.test(y);
    if (dx && dy) {
      const nx = BigInt(x);
      const ny = BigInt(y);
      if (nx !== ny) return nx < ny ? -1 : 1;
      return x.length - y.length; // "007" after "7"
    }
    return x < y ? -1 : 1;
  }
  return ra.length - rb.length;
}

function stemOf(name: string): string {
  const base = name.slice(name.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(0, dot) : base;
}

function listEntries(dir: string, what: (e: Deno.DirEntry) => boolean): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (e.name.startsWith(".")) continue;
    // Follow symlinks: stat the target.
    if (e.isSymlink) {
      const s = statOrNull(join(dir, e.name));
      if (!s) continue;
      const fake = { ...e, isFile: s.isFile, isDirectory: s.isDirectory };
      if (what(fake)) out.push(e.name);
    } else if (what(e)) out.push(e.name);
  }
  return out.sort(naturalCompare);
}

/**
 * The mask file of image `stem` in `dir`: `<stem>_mask.<ext>` or else `<stem>.<ext>`, `ext` any
 * image extension, matched case-insensitively (`00_mask.PNG`); null when none.
 */
function findMask(
  dir: string,
  stem: string,
  maskIndex: Map<string, Map<string, string>>,
): string | null {
  let index = maskIndex.get(dir);
  if (!index) {
    index = new Map();
    for (const n of isDir(dir) ? listImages(dir) : []) {
      const lower = n.toLowerCase();
      const key = lower.slice(0, lower.lastIndexOf("."));
      if (!index.has(key) || n.endsWith(".png")) index.set(key, n);
    }
    maskIndex.set(dir, index);
  }
  const s = stem.toLowerCase();
  const hit = index.get(`${s}_mask`) ?? index.get(s);
  return hit ? join(dir, hit) : null;
}

function listImages(dir: string): string[] {
  return listEntries(dir, (e) => {
    if (!IMAGE_EXT.test(e.name)) return false;
    if (!e.isFile && !e.isDirectory) {
      // A FIFO, socket or device named like an image: reading it could block or fail.
      console.warn(
        `snarm: warning: skipping ${
          join(dir, e.name)
        }: not a regular file (FIFO, socket or device)`,
      );
    }
    return e.isFile;
  });
}

function listDirs(dir: string): string[] {
  return listEntries(dir, (e) => e.isDirectory);
}

function checkRoot(root: string): void {
  const s = statOrNull(root);
  if (!s) throw new DatasetError(`${root}: dataset root does not exist; ${LAYOUT_HINT}`);
  if (!s.isDirectory) {
    throw new DatasetError(`${root}: dataset root is not a folder; ${LAYOUT_HINT}`);
  }
}

function csvFor(root: string, opts: DatasetOptions): string | null {
  if (opts.csv) {
    if (!isFile(opts.csv)) {
      throw new DatasetError(
        `${opts.csv}: split CSV does not exist; expected a VisA 1cls-style CSV`,
      );
    }
    return opts.csv;
  }
  const p = join(root, "split_csv", "1cls.csv");
  return isFile(p) ? p : null;
}

/**
 * Category names under a dataset root, sorted (natural order).
 * MVTec layout: sub-folders that have `train/good/` or `test/`. VisA CSV: distinct `object` values.
 * @throws {DatasetError} naming `root` when it does not exist, is not a folder, or has no category.
 */
export function listCategories(root: string, opts: DatasetOptions = {}): string[] {
  const folder = opts.folder ?? (statOrNull(root)?.isDirectory ? detectFolderLayout(root) : null);
  if (folder) return [folderCategory(folder)];
  checkRoot(root);
  const csv = csvFor(root, opts);
  if (csv) {
    const cats = [...new Set(readSplitCsv(csv).map((r) => r.object))].sort(naturalCompare);
    if (cats.length === 0) throw new DatasetError(`${csv}: split CSV has no rows; ${LAYOUT_HINT}`);
    return cats.map((c) => checkCategoryName(c, csv));
  }
  const cats = listDirs(root).filter((d) =>
    isDir(join(root, d, "train", "good")) || isDir(join(root, d, "test"))
  );
  if (cats.length === 0) {
    const self = isDir(join(root, "train", "good"))
      ? ` (it looks like a category folder itself: pass its parent as the root)`
      : "";
    throw new DatasetError(`${root}: no categories found${self}; ${LAYOUT_HINT}`);
  }
  return cats;
}

/**
 * Enumerate one category's train and test images (and masks).
 * @throws {DatasetError} naming the path for a wrong root or unknown category, an empty category
 *   (no training images), a defect image whose mask file is missing while the category ships
 *   ground truth, or a malformed / inconsistent split CSV.
 */
export function loadSplit(root: string, category: string, opts: DatasetOptions = {}): DatasetSplit {
  const folder = opts.folder ?? (statOrNull(root)?.isDirectory ? detectFolderLayout(root) : null);
  if (folder) return uniqueIds(loadFolderSplit(root, folder));
  checkRoot(root);
  const csv = csvFor(root, opts);
  if (csv) return uniqueIds(loadCsvSplit(root, checkCategoryName(category, csv), csv));
  checkCategoryName(category, root);
  if (isDir(join(root, category, "train", "good", "rgb"))) {
    return uniqueIds(loadMvtec3dSplit(root, category, opts.validationAsTrain ?? false));
  }
  return uniqueIds(loadMvtecSplit(root, category));
}

/**
 * A category name is a folder name in the outputs (`maps/<category>/`, banks): no path separator,
 * not `.`/`..`, not empty.
 * @throws {DatasetError} naming `where` (the CSV or root) and the name.
 */
function checkCategoryName(name: string, where: string): string {
  if (!name || name === "." || name === ".." || /[\/\\\0]/.test(name)) {
    throw new DatasetError(
      `${where}: category "${name}" cannot name an output folder (no "/", "\\", "." or ".."); ` +
        "rename it",
    );
  }
  return name;
}

/**
 * Image ids (`<split>/<type>/<stem>`) name the outputs (images.csv rows, map files): two files of
 * one folder that differ only by extension (`02.jpg`, `02.png`) would share one.
 * @throws {DatasetError} naming both files.
 */
function uniqueIds(split: DatasetSplit): DatasetSplit {
  const seen = new Map<string, string>();
  for (const r of [...split.train, ...split.test]) {
    const other = seen.get(r.id);
    if (other !== undefined) {
      throw new DatasetError(
        `${r.path} and ${other} have the same image id "${r.id}" (same name but the ` +
          "extension): rename one",
      );
    }
    seen.set(r.id, r.path);
  }
  return split;
}

/**
 * One record: `dir/name` of `category`, with id `<idPrefix>/<type>/<stem>` (idPrefix defaults to
 * the split; MVTec 3D-AD validation normals keep `validation`).
 */
function makeRecord(
  dir: string,
  name: string,
  category: string,
  split: "train" | "test",
  type: string,
  label: 0 | 1,
  maskPath: string | null = null,
  idPrefix: string = split,
): ImageRecord {
  return {
    path: join(dir, name),
    category,
    split,
    defectType: type,
    label,
    maskPath,
    maskRule: "auto",
    id: `${idPrefix}/${type}/${stemOf(name)}`,
  };
}

function folderCategory(f: FolderSpec): string {
  return f.category ?? (f.normalDir.replace(/\/+$/, "").split("/").slice(-2, -1)[0] || "folder");
}

/** Seeded Fisher–Yates order of `n` items (mulberry32). */
function seededOrder(n: number, seed: number): number[] {
  const rand = mulberry32(seed);
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx;
}

function loadFolderSplit(root: string, f: FolderSpec): DatasetSplit {
  const category = folderCategory(f);
  for (const d of [f.normalDir, ...f.abnormalDirs, ...(f.maskDir ? [f.maskDir] : [])]) {
    if (!isDir(d)) throw new DatasetError(`${d}: folder does not exist (Folder dataset)`);
  }
  const ratio = f.splitRatio ?? 0.2;
  if (!(ratio > 0 && ratio < 1)) {
    throw new DatasetError(`Folder dataset: \`splitRatio\` must be in (0, 1), got ${ratio}`);
  }
  const normals = listImages(f.normalDir);
  if (normals.length < 2) {
    throw new DatasetError(
      `${f.normalDir}: ${normals.length} normal image(s); a Folder dataset needs at least 2 (train and test)`,
    );
  }
  const order = seededOrder(normals.length, f.seed ?? 0);
  const nTest = Math.max(1, Math.round(ratio * normals.length));
  const testSet = new Set(order.slice(0, nTest));
  const rec = (dir: string, n: string, split: "train" | "test", type: string, label: 0 | 1) =>
    makeRecord(dir, n, category, split, type, label);
  const train = normals.filter((_, i) => !testSet.has(i)).map((n) =>
    rec(f.normalDir, n, "train", "good", 0)
  );
  if (!train.length) {
    throw new DatasetError(
      `${f.normalDir}: \`splitRatio\` ${ratio} sends all ${normals.length} normal images to the ` +
        `test set and leaves none for training; use a smaller ratio`,
    );
  }
  const test: ImageRecord[] = normals.filter((_, i) => testSet.has(i)).map((n) =>
    rec(f.normalDir, n, "test", "good", 0)
  );
  const maskIndex = new Map<string, Map<string, string>>();
  let withMask = 0, defects = 0;
  for (const d of f.abnormalDirs) {
    const type = d.replace(/\/+$/, "").split("/").pop()!;
    for (const n of listImages(d)) {
      const r = rec(d, n, "test", type, 1);
      if (f.maskDir) {
        // Masks flat in the mask folder, or in a sub-folder per anomalous folder.
        const own = findMask(join(f.maskDir, type), stemOf(n), maskIndex);
        r.maskPath = own ?? findMask(f.maskDir, stemOf(n), maskIndex);
        if (!own && r.maskPath) {
          // A flat mask folder: the mask name must not fit images of two anomalous folders.
          const also = f.abnormalDirs.filter((o) =>
            o !== d &&
            listImages(o).some((m) => stemOf(m).toLowerCase() === stemOf(n).toLowerCase())
          );
          if (also.length) {
            throw new DatasetError(
              `${r.maskPath}: this mask's name fits ${r.path} and images in ${also.join(", ")}; ` +
                `with same-named images in several anomalous folders put the masks in ` +
                `${join(f.maskDir, "<folder name>")}/ (one sub-folder per anomalous folder)`,
            );
          }
        }
        if (!r.maskPath) {
          throw new DatasetError(
            `${f.maskDir}: no mask for anomalous image ${r.path}; expected ${stemOf(n)}_mask.png ` +
              `or ${stemOf(n)}.png in ${f.maskDir} or ${join(f.maskDir, type)}`,
          );
        }
        withMask++;
      }
      defects++;
      test.push(r);
    }
  }
  return {
    root,
    category,
    layout: "folder",
    train,
    test,
    hasMasks: f.maskDir ? withMask === defects : false,
  };
}

/**
 * MVTec 3D-AD (RGB only): `<cat>/train/good/rgb/*.png`, `<cat>/validation/good/rgb/*.png`
 * (normal; used for training only with `validationAsTrain`), `<cat>/test/<type>/rgb/*.png` with
 * masks `<cat>/test/<type>/gt/<stem>.png` (also for good images: all zero). The xyz point clouds
 * are not read.
 */
function loadMvtec3dSplit(root: string, category: string, withValidation: boolean): DatasetSplit {
  const dir = join(root, category);
  const normalsOf = (split: string) => {
    const d = join(dir, split, "good", "rgb");
    return isDir(d) ? listImages(d).map((n) => ({ d, n, split })) : [];
  };
  const trainFiles = [...normalsOf("train"), ...(withValidation ? normalsOf("validation") : [])];
  if (!trainFiles.length) {
    throw new DatasetError(`${join(dir, "train", "good", "rgb")}: no training images`);
  }
  const train = trainFiles.map(({ d, n, split }) =>
    makeRecord(d, n, category, "train", "good", 0, null, split)
  );
  const test: ImageRecord[] = [];
  const testDir = join(dir, "test");
  let defects = 0, withMask = 0;
  const maskIndex = new Map<string, Map<string, string>>();
  for (const type of isDir(testDir) ? listDirs(testDir) : []) {
    const rgb = join(testDir, type, "rgb");
    if (!isDir(rgb)) continue;
    const label = type === "good" ? 0 : 1;
    for (const n of listImages(rgb)) {
      const maskPath = label ? findMask(join(testDir, type, "gt"), stemOf(n), maskIndex) : null;
      if (label) {
        defects++;
        if (maskPath) withMask++;
      }
      test.push(makeRecord(rgb, n, category, "test", type, label, maskPath));
    }
  }
  if (withMask > 0 && withMask < defects) {
    const missing = test.find((r) => r.label === 1 && !r.maskPath)!;
    throw new DatasetError(
      `${missing.path}: missing ground-truth mask; expected ${
        join(testDir, missing.defectType, "gt", stemOf(missing.path) + ".png")
      }`,
    );
  }
  return { root, category, layout: "mvtec3d", train, test, hasMasks: defects === withMask };
}

function loadMvtecSplit(root: string, category: string): DatasetSplit {
  const dir = join(root, category);
  if (!isDir(dir)) {
    let known = "";
    try {
      known = ` (categories here: ${listCategories(root).join(", ")})`;
    } catch { /* none */ }
    throw new DatasetError(`${dir}: category folder does not exist${known}; ${LAYOUT_HINT}`);
  }
  const trainDir = join(dir, "train", "good");
  const trainNames = isDir(trainDir) ? listImages(trainDir) : [];
  if (trainNames.length === 0) {
    throw new DatasetError(
      `${trainDir}: no training images (empty category "${category}"); expected at least one ` +
        `image file (.png/.jpg) in train/good`,
    );
  }
  const train = trainNames.map((n) => makeRecord(trainDir, n, category, "train", "good", 0));

  const gtDir = join(dir, "ground_truth");
  const hasGt = isDir(gtDir);
  const testDir = join(dir, "test");
  const test: ImageRecord[] = [];
  const maskIndex = new Map<string, Map<string, string>>(); // folder → lower-case stem → name
  if (isDir(testDir)) {
    for (const type of listDirs(testDir)) {
      const label = type === "good" ? 0 : 1;
      for (const n of listImages(join(testDir, type))) {
        const stem = stemOf(n);
        let maskPath: string | null = null;
        if (label === 1 && hasGt) {
          const a = join(gtDir, type, `${stem}_mask.png`);
          maskPath = findMask(join(gtDir, type), stem, maskIndex);
          if (!maskPath) {
            throw new DatasetError(
              `${a}: missing ground-truth mask for defect image ${join(testDir, type, n)}; ` +
                `expected ground_truth/<type>/<stem>_mask.png for every defect image ` +
                `(or no ground_truth folder at all)`,
            );
          }
        }
        test.push(makeRecord(join(testDir, type), n, category, "test", type, label, maskPath));
      }
    }
  }
  return { root, category, layout: "mvtec", train, test, hasMasks: hasGt };
}

interface CsvRow {
  object: string;
  split: string;
  label: string;
  image: string;
  mask: string;
  line: number;
}

/** Minimal RFC-4180 line splitter (quotes with "" escapes; no embedded newlines). */
function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (q) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') q = false;
      else cur += ch;
    } else if (ch === '"') q = true;
    else if (ch === ",") {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

function readSplitCsv(csv: string): CsvRow[] {
  let text: string;
  try {
    text = Deno.readTextFileSync(csv);
  } catch (e) {
    throw new DatasetError(`${csv}: cannot read split CSV (${(e as Error).message})`);
  }
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const header = splitCsvLine(lines[0] ?? "").map((h) => h.toLowerCase());
  const need = ["object", "split", "label", "image", "mask"];
  const idx = need.map((k) => header.indexOf(k));
  if (idx.some((i) => i < 0)) {
    throw new DatasetError(
      `${csv}: split CSV header is "${lines[0] ?? ""}"; expected columns ${need.join(",")}`,
    );
  }
  const rows: CsvRow[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (lines[i].trim() === "") continue;
    const f = splitCsvLine(lines[i]);
    const [object, split, label, image, mask] = idx.map((k) => f[k] ?? "");
    if (!object || !image) {
      throw new DatasetError(`${csv}:${i + 1}: row lacks object or image; expected ${need}`);
    }
    rows.push({ object, split, label, image, mask, line: i + 1 });
  }
  return rows;
}

function loadCsvSplit(root: string, category: string, csv: string): DatasetSplit {
  const rows = readSplitCsv(csv).filter((r) => r.object === category);
  if (rows.length === 0) {
    throw new DatasetError(`${csv}: no rows for category "${category}"; ${LAYOUT_HINT}`);
  }
  const train: ImageRecord[] = [];
  const test: ImageRecord[] = [];
  const rel = new Map<ImageRecord, string>();
  let withMask = 0;
  let defects = 0;
  for (const r of rows) {
    if (r.split !== "train" && r.split !== "test") {
      throw new DatasetError(`${csv}:${r.line}: split "${r.split}"; expected train or test`);
    }
    if (r.label !== "normal" && r.label !== "anomaly") {
      throw new DatasetError(`${csv}:${r.line}: label "${r.label}"; expected normal or anomaly`);
    }
    const label = r.label === "anomaly" ? 1 : 0;
    const path = join(root, r.image);
    if (!isFile(path)) {
      throw new DatasetError(`${path}: image listed in ${csv}:${r.line} does not exist`);
    }
    let maskPath: string | null = null;
    if (label === 1) {
      defects++;
      if (r.mask) {
        maskPath = join(root, r.mask);
        if (!isFile(maskPath)) {
          throw new DatasetError(
            `${maskPath}: missing ground-truth mask for ${path} (listed in ${csv}:${r.line})`,
          );
        }
        withMask++;
      }
    }
    const defectType = label ? "anomaly" : "good";
    const rec: ImageRecord = {
      path,
      category,
      split: r.split,
      defectType,
      label,
      maskPath,
      maskRule: "nonzero",
      id: `${r.split}/${defectType}/${stemOf(r.image)}`,
    };
    rel.set(rec, r.image.replace(/\.[^./]*$/, ""));
    (r.split === "train" ? train : test).push(rec);
  }
  if (withMask > 0 && withMask < defects) {
    const r = rows.find((x) => x.label === "anomaly" && !x.mask)!;
    throw new DatasetError(
      `${csv}:${r.line}: anomaly image ${r.image} has no mask while others do; ` +
        `expected a mask path for every anomaly row`,
    );
  }
  if (train.length === 0) {
    throw new DatasetError(
      `${csv}: no training images for category "${category}" (empty category); ` +
        `expected rows with split=train`,
    );
  }
  for (const list of [train, test]) {
    const seen = new Set<string>();
    for (const r of list) {
      if (seen.has(r.id)) r.id = `${r.split}/${r.defectType}/${rel.get(r)}`;
      seen.add(r.id);
    }
    list.sort((a, b) => naturalCompare(a.defectType, b.defectType) || naturalCompare(a.id, b.id));
  }
  return { root, category, layout: "visa-csv", train, test, hasMasks: defects === withMask };
}
