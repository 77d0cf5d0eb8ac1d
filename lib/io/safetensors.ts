/**
 * safetensors read/write (format: 8-byte little-endian header length, JSON header, raw LE data).
 *
 * No maintained safetensors package exists on the npm registry (the `safetensors` package is a
 * 0.0.1 placeholder), so this small module implements the published format. Files are written
 * atomically: to `<path>.tmp-<pid>` first, then renamed.
 * @module
 */

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

/**
 * Parse safetensors bytes. `what` names the source in error messages.
 * @throws {SafeTensorsError} on a truncated or malformed file or an unsupported dtype.
 */
export function parseSafeTensors(bytes: Uint8Array, what = "safetensors"): SafeTensors {
  if (bytes.byteLength < 8) throw new SafeTensorsError(`${what}: file shorter than 8 bytes`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n <= 0 || 8 + n > bytes.byteLength) {
    throw new SafeTensorsError(
      `${what}: header length ${n} does not fit a ${bytes.byteLength}-byte file`,
    );
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new SafeTensorsError(`${what}: header is not JSON (${(e as Error).message})`);
  }
  const base = 8 + n;
  const tensors = new Map<string, Tensor>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = (v ?? {}) as Record<string, string>;
      continue;
    }
    const info = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const dtype = info.dtype as DType;
    if (!(dtype in SIZES)) {
      throw new SafeTensorsError(`${what}: tensor ${name} has unsupported dtype ${info.dtype}`);
    }
    const [s, e] = info.data_offsets;
    const count = info.shape.reduce((a, b) => a * b, 1);
    if (e - s !== count * SIZES[dtype] || base + e > bytes.byteLength) {
      throw new SafeTensorsError(
        `${what}: tensor ${name} (${dtype} [${info.shape}]) data_offsets [${s}, ${e}] do not match its size or the file is truncated`,
      );
    }
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
  return { tensors, metadata };
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

/** Write `bytes` to `path` atomically (temp file in the same folder, then rename). */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    if (typeof bytes === "string") await Deno.writeTextFile(tmp, bytes);
    else await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Encode and atomically write a safetensors file. */
export async function writeSafeTensors(
  path: string,
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(path, encodeSafeTensors(tensors, metadata));
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
