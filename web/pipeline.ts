/**
 * The whole SNARM scoring pipeline from bytes, for a browser page (and any caller without a file
 * system): an ONNX backbone (onnxruntime-web), a bank and optionally a head, as the files
 * `deno task eval --save-bank` and the fitted/shipped head are; images as encoded bytes
 * (PNG/JPEG). Geometry, backbone preset, taps and feature size come from the bank's metadata.
 *
 * @example
 * ```ts
 * const scorer = await createScorer({ model, bank, head });   // Uint8Arrays
 * const r = await scorer.score(pngBytes, "01.png");           // r.map (S×S), r.score, r.rgb
 * ```
 * @module
 */
import { type Backbone, loadBackbone } from "../lib/backbone/mod.ts";
import { type Bank, bankFromBytes } from "../lib/bank/bank.ts";
import { type BankIndex, createBankIndex } from "../lib/bank/search.ts";
import { headGeometry, preprocessImage, preprocessMask } from "../lib/data/preprocess.ts";
import { headBlend, type MapBlend } from "../lib/eval/blend.ts";
import { checkFeaturesFinite, type ScoredImage, scoreFeatures } from "../lib/eval/score.ts";
import { type Gpu, tryGetGpu } from "../lib/gpu/mod.ts";
import { decodeImage, toGray } from "../lib/io/image.ts";
import { parseSafeTensors } from "../lib/io/safetensors.ts";
import { Head } from "../lib/model/head.ts";
import { headWeightsFromSafeTensors } from "../lib/model/weights.ts";

/** What a scorer is made of (file bytes). */
export interface ScorerInputs {
  /** The backbone ONNX (the bank's backbone; default preset MobileNetV2 int8). */
  model: Uint8Array;
  /** A bank file from `deno task eval --save-bank`. */
  bank: Uint8Array;
  /** A SNARM head (safetensors); without it: bank-only scoring. */
  head?: Uint8Array;
}

/** One scored image, with what the page shows. */
export interface PageResult extends ScoredImage {
  name: string;
  /** `(S, S, 3)` u8 RGB crop (the backbone's view of the image). */
  rgb: Uint8Array;
  /** Crop side S and patch grid side. */
  size: number;
  grid: number;
  seconds: ScoredImage["seconds"] & { embed: number };
}

/** A loaded pipeline. */
export interface Scorer {
  geometry: { resize: number; crop: number };
  bank: Bank;
  head: Head | null;
  blend: MapBlend | null;
  adapter: string;
  /** Score one encoded image. @throws {ImageError} naming `name` for an undecodable file. */
  score(bytes: Uint8Array, name: string): Promise<PageResult>;
  /** `(S, S)` 0/1 mask of an encoded mask image, through the same geometry. */
  mask(bytes: Uint8Array, name: string): Uint8Array;
  release(): Promise<void>;
}

/**
 * Load a scorer.
 * @throws {Error} without WebGPU (`navigator.gpu` missing or no adapter), or naming the file
 * (bank, head, model) that does not parse or does not fit the others.
 */
export async function createScorer(inputs: ScorerInputs): Promise<Scorer> {
  const gpu: Gpu | null = await tryGetGpu();
  if (!gpu) {
    throw new Error(
      "this browser offers no WebGPU adapter (navigator.gpu); use a recent Chrome/Edge, or " +
        "chromium with --enable-unsafe-webgpu",
    );
  }
  const bank = bankFromBytes(inputs.bank, "bank");
  const crop = typeof bank.meta.inputSize === "number"
    ? bank.meta.inputSize
    : bank.meta.inputSize[0];
  const resize = bank.meta.resize ?? Math.round((crop * 448) / 392);
  const bb: Backbone = await loadBackbone(bank.meta.backbone, {
    modelPath: inputs.model,
    inputSize: crop,
    grid: bank.meta.grid[0],
    targetDim: bank.meta.dim,
    taps: bank.meta.taps as string[][],
    engine: "wasm",
  });
  const desc = bb.describe();
  if (desc.featureDim !== bank.meta.dim) {
    throw new Error(`model gives ${desc.featureDim}-d features, the bank holds ${bank.meta.dim}-d`);
  }
  let head: Head | null = null, blend: MapBlend | null = null;
  if (inputs.head) {
    // One parse: the weights and the stored blend.
    const st = parseSafeTensors(inputs.head, "head");
    head = new Head(headWeightsFromSafeTensors(st, undefined, "head"));
    if (head.config.in_chans !== 2 * bank.meta.dim) {
      throw new Error(
        `head expects in_chans ${head.config.in_chans}, the bank's features give ${
          2 * bank.meta.dim
        }`,
      );
    }
    // a head fitted at another geometry scores other patches (the CLI refuses it too)
    const geo = headGeometry(st.metadata);
    if (geo && (geo.crop !== crop || geo.resize !== resize)) {
      throw new Error(
        `head was fitted at ${geo.resize} → ${geo.crop} px, the bank is ${resize} → ${crop}: ` +
          "use a head and a bank of one geometry",
      );
    }
    blend = headBlend(st.metadata);
  }
  const index: BankIndex = await createBankIndex(gpu, bank.features, bank.meta.dim);
  const geometry = { resize, crop };
  return {
    geometry,
    bank,
    head,
    blend,
    adapter: gpu.info.description,
    async score(bytes, name) {
      const t0 = performance.now();
      const img = decodeImage(bytes, name);
      const { image, rgb } = preprocessImage(img, geometry);
      const f = await bb.embed(image, [1, 3, crop, crop]);
      checkFeaturesFinite(f, name);
      const embed = (performance.now() - t0) / 1000;
      const r = await scoreFeatures(f, index, 3, head ? { head, blend } : null, crop);
      return { ...r, name, rgb, size: crop, grid: f.h, seconds: { ...r.seconds, embed } };
    },
    mask(bytes, name) {
      const m = decodeImage(bytes, name);
      return preprocessMask(toGray(m), m.width, m.height, geometry);
    },
    async release() {
      index.destroy();
      await bb.release();
    },
  };
}
