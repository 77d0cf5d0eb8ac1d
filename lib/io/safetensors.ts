/**
 * safetensors read/write (format: 8-byte little-endian header length, JSON header, raw LE data).
 *
 * No maintained safetensors package exists on the npm registry (the `safetensors` package is a
 * 0.0.1 placeholder), so this small module implements the published format. Files are written
 * atomically: to `<path>.tmp-<pid>-<rand>` first, flushed, then renamed (`commit.ts`).
 * @module
 */
import { writeFileAtomic } from "./commit.ts";

/** Supported element types. */
export type DType = "F32" | "F16" | "I32" | "I64" | "U8" | "U32";

/** One tensor: dtype, shape, and its data as a typed array (I64 decoded to BigInt64Array). */
export interface Tensor {
  dtype: DType;
  shape: number[];
  data:
    | Float32Array
    | Int32Array
    | Uint8Array
    | Uint32Array
    | Uint16Array
    | BigInt64Array;
}

/** A parsed file: tensors by name plus the string-to-string `__metadata__`. */
export interface SafeTensors {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/** Raised for a malformed file or a tensor that is missing / of the wrong dtype or shape. */
export class SafeTensorsError extends Error {
  override name = "SafeTensorsError";
}

const SIZES: Record<DType, number> = { F32: 4, F16: 2, I32: 4, I64: 8, U8: 1, U32: 4 };

/** Largest header accepted (bytes), as in the reference implementation (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * Top-level keys of a JSON object text, in order, duplicates included (JSON.parse keeps only the
 * last of duplicate keys, so they are found on the raw text).
 */
function topLevelKeys(json: string, at = 1): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const ch = json[i];
    if (ch === '"') {
      let j = i + 1;
      while (j < json.length && json[j] !== '"') j += json[j] === "\\" ? 2 : 1;
      if (depth === at) {
        let k = j + 1;
        while (k < json.length && /\s/.test(json[k])) k++;
        if (json[k] === ":") keys.push(JSON.parse(json.slice(i, j + 1)));
      }
      i = j;
    } else if (ch === "{" || ch === "[") depth++;
    else if (ch === "}" || ch === "]") depth--;
  }
  return keys;
}

/**
 * Parse safetensors bytes. `what` names the source in error messages. Checked to the letter of
 * the format: header length ≤ {@link MAX_HEADER_BYTES} and within the file; the header a JSON
 * object without duplicate names; `__metadata__` a string → string map; per tensor a known dtype,
 * a shape of non-negative integers and `data_offsets` `[begin, end]` with end − begin = dtype size
 * × element count; the tensors' byte ranges disjoint and, in offset order, covering the data
 * buffer exactly (no gap, no overlap, no trailing bytes).
 * @throws {SafeTensorsError} naming `what` and the tensor on any violation or an unsupported
 * dtype.
 */
export function parseSafeTensors(bytes: Uint8Array, what = "safetensors"): SafeTensors {
  if (bytes.byteLength < 8) throw new SafeTensorsError(`${what}: file shorter than 8 bytes`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    throw new SafeTensorsError(
      `${what}: header length ${n64} exceeds the format's limit of ${MAX_HEADER_BYTES} bytes`,
    );
  }
  const n = Number(n64);
  if (n <= 0 || 8 + n > bytes.byteLength) {
    throw new SafeTensorsError(
      `${what}: header length ${n} does not fit a ${bytes.byteLength}-byte file`,
    );
  }
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafeTensorsError(`${what}: header is not JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new SafeTensorsError(`${what}: header is not a JSON object`);
  }
  const seen = new Set<string>();
  for (const k of topLevelKeys(text)) {
    if (seen.has(k)) throw new SafeTensorsError(`${what}: tensor name "${k}" appears twice`);
    seen.add(k);
  }
  const mi = text.indexOf('"__metadata__"');
  if (mi >= 0) {
    // Keys of the __metadata__ object (depth 1 of the text from its opening brace).
    const open = text.indexOf("{", mi);
    let depth = 0, end = open;
    for (let i = open; i < text.length; i++) {
      if (text[i] === '"') {
        i++;
        while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      } else if (text[i] === "{") depth++;
      else if (text[i] === "}" && --depth === 0) {
        end = i;
        break;
      }
    }
    const mseen = new Set<string>();
    for (const k of topLevelKeys(text.slice(open, end + 1))) {
      if (mseen.has(k)) {
        throw new SafeTensorsError(`${what}: __metadata__ key "${k}" appears twice`);
      }
      mseen.add(k);
    }
  }
  const base = 8 + n;
  const dataLength = bytes.byteLength - base;
  const tensors = new Map<string, Tensor>();
  const ranges: Array<{ name: string; s: number; e: number }> = [];
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (v === null || typeof v !== "object" || Array.isArray(v)) {
        throw new SafeTensorsError(`${what}: __metadata__ is not an object`);
      }
      for (const [k, x] of Object.entries(v)) {
        if (typeof x !== "string") {
          throw new SafeTensorsError(`${what}: __metadata__ value of "${k}" is not a string`);
        }
      }
      metadata = v as Record<string, string>;
      continue;
    }
    const info = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (info === null || typeof info !== "object") {
      throw new SafeTensorsError(`${what}: tensor ${name}: header entry is not an object`);
    }
    const dtype = info.dtype as DType;
    if (typeof dtype !== "string" || !(dtype in SIZES)) {
      throw new SafeTensorsError(`${what}: tensor ${name} has unsupported dtype ${info.dtype}`);
    }
    const shape = info.shape;
    if (
      !Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)
    ) {
      throw new SafeTensorsError(
        `${what}: tensor ${name}: shape ${JSON.stringify(shape)} is not a list of sizes`,
      );
    }
    const off = info.data_offsets;
    if (
      !Array.isArray(off) || off.length !== 2 ||
      !off.every((x) => Number.isSafeInteger(x) && x >= 0) || off[1] < off[0]
    ) {
      throw new SafeTensorsError(
        `${what}: tensor ${name}: data_offsets ${JSON.stringify(off)} is not [begin, end]`,
      );
    }
    const [s, e] = off as [number, number];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (e - s !== count * SIZES[dtype]) {
      throw new SafeTensorsError(
        `${what}: tensor ${name} (${dtype} [${shape}]) needs ${
          count * SIZES[dtype]
        } bytes, data_offsets [${s}, ${e}] give ${e - s}`,
      );
    }
    if (e > dataLength) {
      throw new SafeTensorsError(
        `${what}: tensor ${name} data_offsets [${s}, ${e}] reach past the ${dataLength}-byte data buffer (file truncated?)`,
      );
    }
    ranges.push({ name, s, e });
  }
  ranges.sort((a, b) => a.s - b.s || a.e - b.e);
  let at = 0;
  for (const r of ranges) {
    if (r.s < at) {
      const prev = ranges[ranges.indexOf(r) - 1];
      throw new SafeTensorsError(
        `${what}: tensor ${r.name} data_offsets [${r.s}, ${r.e}] overlap tensor ${prev.name} [${prev.s}, ${prev.e}]`,
      );
    }
    if (r.s > at) {
      throw new SafeTensorsError(
        `${what}: tensor ${r.name} begins at byte ${r.s} of the data buffer, leaving a gap [${at}, ${r.s}) no tensor covers`,
      );
    }
    at = r.e;
  }
  if (at !== dataLength) {
    throw new SafeTensorsError(
      `${what}: the tensors cover ${at} bytes but the data buffer has ${dataLength} (trailing bytes)`,
    );
  }
  for (const { name, s, e } of ranges) {
    const info = header[name] as { dtype: DType; shape: number[] };
    const dtype = info.dtype;
    const raw = bytes.slice(base + s, base + e).buffer;
    let data: Tensor["data"];
    switch (dtype) {
      case "F32":
        data = new Float32Array(raw);
        break;
      case "F16":
        data = new Uint16Array(raw);
        break;
      case "I32":
        data = new Int32Array(raw);
        break;
      case "U32":
        data = new Uint32Array(raw);
        break;
      case "I64":
        data = new BigInt64Array(raw);
        break;
      default:
        data = new Uint8Array(raw);
    }
    tensors.set(name, { dtype, shape: info.shape, data });
  }
  // Keep the header's order (callers may rely on insertion order).
  const ordered = new Map<string, Tensor>();
  for (const name of Object.keys(header)) {
    const t = tensors.get(name);
    if (t) ordered.set(name, t);
  }
  return { tensors: ordered, metadata };
}

/**
 * Read and parse a safetensors file.
 * @throws {SafeTensorsError} naming the path when it is missing or malformed.
 */
export async function readSafeTensors(path: string | URL): Promise<SafeTensors> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new SafeTensorsError(`cannot read safetensors file ${path}: ${(e as Error).message}`);
  }
  return parseSafeTensors(bytes, String(path));
}

/** Serialise tensors (in insertion order) and metadata to safetensors bytes. */
export function encodeSafeTensors(
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const [name, t] of entries) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new SafeTensorsError(
        `tensor ${name}: shape [${t.shape}] needs ${count} values, got ${t.data.length}`,
      );
    }
    const len = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + len] };
    off += len;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += " ";
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
    p += t.data.byteLength;
  }
  return out;
}

export { writeFileAtomic } from "./commit.ts";

/**
 * Encode and atomically write a safetensors file ({@link writeFileAtomic}: temp file, flushed,
 * renamed; stale temp files of dead processes removed). `fault` names a test fault point.
 */
export async function writeSafeTensors(
  path: string,
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata: Record<string, string> = {},
  opts: { fault?: string } = {},
): Promise<void> {
  await writeFileAtomic(path, encodeSafeTensors(tensors, metadata), opts);
}

/**
 * Fetch a tensor and check its dtype and (optionally) shape; `-1` in `shape` matches any size.
 * @throws {SafeTensorsError} naming the tensor and what was expected.
 */
export function requireTensor(
  st: SafeTensors,
  name: string,
  dtype: DType,
  shape?: number[],
  what = "safetensors",
): Tensor {
  const t = st.tensors.get(name);
  if (!t) throw new SafeTensorsError(`${what}: missing tensor ${name}`);
  if (t.dtype !== dtype) {
    throw new SafeTensorsError(`${what}: tensor ${name} has dtype ${t.dtype}, expected ${dtype}`);
  }
  if (
    shape &&
    (shape.length !== t.shape.length || shape.some((s, i) => s !== -1 && s !== t.shape[i]))
  ) {
    throw new SafeTensorsError(
      `${what}: tensor ${name} has shape [${t.shape}], expected [${
        shape.map((s) => s === -1 ? "*" : s)
      }]`,
    );
  }
  return t;
}
