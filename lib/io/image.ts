/**
 * Image decoding: PNG (`npm:fast-png`) and JPEG (`npm:jpeg-js`) to RGB u8, following what
 * `cv2.imread(path, cv2.IMREAD_COLOR)` gives the official SNARM preprocessing (spec §11), but in
 * RGB channel order:
 *
 * - The format is detected from the magic bytes, never from the file extension.
 * - Grayscale sources are replicated to 3 channels (`grayscale: true` records it).
 * - Alpha channels are dropped, not composited (libpng `png_set_strip_alpha`, as cv2 does).
 * - 16-bit PNG samples keep their high byte (`v >> 8`, libpng `png_set_strip_16`, as cv2 does).
 * - 1/2/4-bit gray PNG samples are scaled to 0..255 (`png_set_expand_gray_1_2_4_to_8`).
 * - Palette PNGs are expanded through the palette.
 * - JPEG EXIF orientation (tag 0x0112) is applied, as cv2's IMREAD_COLOR does.
 *
 * Known difference: jpeg-js's IDCT and chroma up-sampling are not bit-identical to libjpeg-turbo
 * (cv2). Decoded JPEG pixels can differ by a few grey levels; PNG decoding is exact.
 * @module
 */

// Full npm: specifiers so the toolkit also works when imported by URL (project rule).
// deno-lint-ignore no-import-prefix
import { convertIndexedToRgb, decode as decodePngRaw } from "npm:fast-png@8.0.0";
// deno-lint-ignore no-import-prefix
import jpeg from "npm:jpeg-js@0.4.4";

/** Raised for an unreadable, corrupt, truncated or unsupported image file. */
export class ImageError extends Error {
  /** Error name. */
  override name = "ImageError";
}

/** An RGB image: `data` is `(H, W, 3)` row-major u8, channel order R, G, B. */
export interface RgbImage {
  /** Width in px. */
  width: number;
  /** Height in px. */
  height: number;
  /** `(height, width, 3)` row-major u8 RGB. */
  data: Uint8Array;
}

/** A decoded file: the RGB image plus where it came from. */
export interface DecodedImage extends RgbImage {
  /** The source had one colour channel (gray or gray+alpha); R = G = B in `data`. */
  grayscale: boolean;
  /** Container format detected from the magic bytes. */
  format: "png" | "jpeg";
}

/** Formats recognised by {@link detectImageFormat}; only "png" and "jpeg" can be decoded. */
export type ImageFormat = "png" | "jpeg" | "bmp" | "gif" | "webp" | "tiff" | "unknown";

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const EXPECTED = "a PNG (89 50 4E 47 0D 0A 1A 0A) or JPEG (FF D8 FF) file";

/** Detect the image container format from the first bytes (magic numbers). */
export function detectImageFormat(bytes: Uint8Array): ImageFormat {
  const b = bytes;
  const starts = (sig: number[], at = 0) =>
    b.length >= at + sig.length && sig.every((v, i) => b[at + i] === v);
  if (starts(PNG_MAGIC)) return "png";
  if (starts([0xff, 0xd8, 0xff])) return "jpeg";
  if (starts([0x42, 0x4d])) return "bmp";
  if (starts([0x47, 0x49, 0x46, 0x38])) return "gif";
  if (starts([0x52, 0x49, 0x46, 0x46]) && starts([0x57, 0x45, 0x42, 0x50], 8)) return "webp";
  if (starts([0x49, 0x49, 0x2a, 0x00]) || starts([0x4d, 0x4d, 0x00, 0x2a])) return "tiff";
  return "unknown";
}

function hexHead(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 8), (v) => v.toString(16).padStart(2, "0")).join(" ");
}

/**
 * Decode PNG or JPEG bytes to RGB u8 `(H, W, 3)`.
 * @param bytes the whole file.
 * @param path names the source in error messages.
 * @throws {ImageError} naming `path` for an unsupported format (BMP, GIF, WebP, TIFF, text, ...),
 *   an empty, corrupt or truncated file, or a zero-sized image.
 */
export function decodeImage(bytes: Uint8Array, path = "<bytes>"): DecodedImage {
  const format = detectImageFormat(bytes);
  if (format === "png") return decodePng(bytes, path);
  if (format === "jpeg") return decodeJpeg(bytes, path);
  if (bytes.length === 0) throw new ImageError(`${path}: empty file; expected ${EXPECTED}`);
  const what = format === "unknown"
    ? `unrecognised bytes [${hexHead(bytes)}]`
    : format.toUpperCase();
  throw new ImageError(`${path}: unsupported image format (${what}); expected ${EXPECTED}`);
}

/**
 * Read and decode an image file (see {@link decodeImage}).
 * @throws {ImageError} naming the path when it cannot be read or decoded.
 */
export async function readImage(path: string): Promise<DecodedImage> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new ImageError(`${path}: cannot read image file (${(e as Error).message})`);
  }
  return decodeImage(bytes, path);
}

/**
 * Gray u8 `(H, W)` of an image, as cv2 `COLOR_RGB2GRAY` (fixed point
 * `(4899 R + 9617 G + 1868 B + 8192) >> 14`); grayscale sources return their single channel.
 */
export function toGray(img: DecodedImage | (RgbImage & { grayscale?: boolean })): Uint8Array {
  const n = img.width * img.height;
  const out = new Uint8Array(n);
  const d = img.data;
  if (img.grayscale) {
    for (let i = 0; i < n; i++) out[i] = d[3 * i];
  } else {
    for (let i = 0; i < n; i++) {
      out[i] = (d[3 * i] * 4899 + d[3 * i + 1] * 9617 + d[3 * i + 2] * 1868 + 8192) >> 14;
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------ PNG

function decodePng(bytes: Uint8Array, path: string): DecodedImage {
  let png;
  try {
    png = decodePngRaw(bytes, { checkCrc: true });
  } catch (e) {
    throw new ImageError(
      `${path}: corrupt or truncated PNG (${(e as Error).message}); expected a complete PNG file`,
    );
  }
  const { width, height, depth, channels } = png;
  if (!(width > 0 && height > 0)) {
    throw new ImageError(`${path}: PNG has size ${width}x${height}; expected a non-empty image`);
  }
  if (!hasIend(bytes)) {
    throw new ImageError(`${path}: truncated PNG (no IEND chunk); expected a complete PNG file`);
  }
  const n = width * height;
  const out = new Uint8Array(n * 3);
  if (png.palette) {
    let rgb: Uint8Array;
    try {
      rgb = convertIndexedToRgb(png);
    } catch (e) {
      throw new ImageError(`${path}: corrupt palette PNG (${(e as Error).message})`);
    }
    const k = rgb.length / n;
    if (k !== 3 && k !== 4) throw new ImageError(`${path}: corrupt palette PNG`);
    for (let i = 0; i < n; i++) {
      out[3 * i] = rgb[k * i];
      out[3 * i + 1] = rgb[k * i + 1];
      out[3 * i + 2] = rgb[k * i + 2];
    }
    return { width, height, data: out, grayscale: false, format: "png" };
  }
  if (channels < 1 || channels > 4) {
    throw new ImageError(`${path}: PNG with ${channels} channels; expected 1 to 4`);
  }
  const data = png.data;
  if (depth < 8) {
    // Packed gray samples, rows padded to whole bytes.
    if (channels !== 1) {
      throw new ImageError(`${path}: PNG bit depth ${depth} with ${channels} channels`);
    }
    const rowBytes = Math.ceil((width * depth) / 8);
    if (data.length < rowBytes * height) throw new ImageError(`${path}: truncated PNG pixel data`);
    const maxV = (1 << depth) - 1;
    const scale = 255 / maxV;
    const perByte = 8 / depth;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const byte = data[y * rowBytes + Math.floor(x / perByte)];
        const shift = 8 - depth * (1 + (x % perByte));
        const v = Math.round(((byte >> shift) & maxV) * scale);
        const o = 3 * (y * width + x);
        out[o] = out[o + 1] = out[o + 2] = v;
      }
    }
    return { width, height, data: out, grayscale: true, format: "png" };
  }
  if (data.length < n * channels) throw new ImageError(`${path}: truncated PNG pixel data`);
  const sh = depth === 16 ? 8 : 0;
  const gray = channels <= 2;
  for (let i = 0; i < n; i++) {
    const s = i * channels;
    if (gray) {
      const v = data[s] >> sh;
      out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = v;
    } else {
      out[3 * i] = data[s] >> sh;
      out[3 * i + 1] = data[s + 1] >> sh;
      out[3 * i + 2] = data[s + 2] >> sh;
    }
  }
  return { width, height, data: out, grayscale: gray, format: "png" };
}

/** Walk the PNG chunk list; true when an IEND chunk is reached inside the file. */
function hasIend(b: Uint8Array): boolean {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 8;
  while (p + 8 <= b.length) {
    const len = dv.getUint32(p);
    if (b[p + 4] === 0x49 && b[p + 5] === 0x45 && b[p + 6] === 0x4e && b[p + 7] === 0x44) {
      return p + 12 + len <= b.length;
    }
    p += 12 + len;
  }
  return false;
}

// ----------------------------------------------------------------------------------------- JPEG

interface JpegInfo {
  components: number;
  orientation: number;
  hasEoi: boolean;
}

/** Scan JPEG markers up to the first SOS: component count and EXIF orientation. */
function scanJpeg(b: Uint8Array, path: string): JpegInfo {
  let p = 2;
  let components = 0;
  let orientation = 1;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) {
      throw new ImageError(`${path}: corrupt JPEG (no marker at byte ${p}); expected a JPEG file`);
    }
    const m = b[p + 1];
    if (m === 0xff) {
      p++; // fill byte
      continue;
    }
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      p += 2;
      continue;
    }
    const len = (b[p + 2] << 8) | b[p + 3];
    const seg = p + 4;
    if (len < 2 || p + 2 + len > b.length) break;
    const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (isSof && len >= 8) components = b[seg + 5];
    if (m === 0xe1 && len >= 16) orientation = exifOrientation(b.subarray(seg, p + 2 + len));
    if (m === 0xda) break; // start of scan: header done
    p += 2 + len;
  }
  // EOI after the first scan (FF D9 cannot occur inside entropy-coded data, which stuffs FF 00;
  // it can occur earlier, in an EXIF thumbnail, hence the search starts at SOS).
  let hasEoi = false;
  for (let i = p; i + 1 < b.length; i++) {
    if (b[i] === 0xff && b[i + 1] === 0xd9) {
      hasEoi = true;
      break;
    }
  }
  return { components, orientation, hasEoi };
}

/** EXIF orientation (1..8) from an APP1 payload, 1 when absent or malformed. */
function exifOrientation(app1: Uint8Array): number {
  const hdr = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"
  if (!hdr.every((v, i) => app1[i] === v)) return 1;
  const t = app1.subarray(6);
  if (t.length < 8) return 1;
  const le = t[0] === 0x49 && t[1] === 0x49;
  if (!le && !(t[0] === 0x4d && t[1] === 0x4d)) return 1;
  const dv = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const ifd = dv.getUint32(4, le);
  if (ifd + 2 > t.length) return 1;
  const count = dv.getUint16(ifd, le);
  for (let i = 0; i < count; i++) {
    const e = ifd + 2 + 12 * i;
    if (e + 12 > t.length) return 1;
    if (dv.getUint16(e, le) === 0x0112) {
      const v = dv.getUint16(e + 8, le);
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

function decodeJpeg(bytes: Uint8Array, path: string): DecodedImage {
  const info = scanJpeg(bytes, path);
  if (!info.hasEoi) {
    throw new ImageError(`${path}: truncated JPEG (no EOI marker); expected a complete JPEG file`);
  }
  let raw: { width: number; height: number; data: Uint8Array };
  try {
    raw = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      tolerantDecoding: false,
      maxMemoryUsageInMB: 1024,
      maxResolutionInMP: 400,
    });
  } catch (e) {
    throw new ImageError(
      `${path}: corrupt or truncated JPEG (${(e as Error).message}); expected a decodable JPEG`,
    );
  }
  const { width, height } = raw;
  if (!(width > 0 && height > 0) || raw.data.length !== width * height * 3) {
    throw new ImageError(`${path}: JPEG decoded to ${width}x${height}; expected a non-empty image`);
  }
  const img: DecodedImage = {
    width,
    height,
    data: raw.data,
    grayscale: info.components === 1,
    format: "jpeg",
  };
  return info.orientation === 1 ? img : { ...applyOrientation(img, info.orientation) };
}

/**
 * Apply an EXIF orientation as cv2 `ExifTransform` does: transpose for 5..8, then flip
 * horizontally (2, 6), both ways (3, 7) or vertically (4, 8).
 */
function applyOrientation(img: DecodedImage, o: number): DecodedImage {
  const t = o >= 5;
  const w = t ? img.height : img.width;
  const h = t ? img.width : img.height;
  const fx = o === 2 || o === 3 || o === 6 || o === 7;
  const fy = o === 3 || o === 4 || o === 7 || o === 8;
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const ty = fy ? h - 1 - y : y; // coordinates in the transposed (or not) image
      const tx = fx ? w - 1 - x : x;
      const sy = t ? tx : ty;
      const sx = t ? ty : tx;
      const s = 3 * (sy * img.width + sx);
      const d = 3 * (y * w + x);
      out[d] = img.data[s];
      out[d + 1] = img.data[s + 1];
      out[d + 2] = img.data[s + 2];
    }
  }
  return { width: w, height: h, data: out, grayscale: img.grayscale, format: img.format };
}
