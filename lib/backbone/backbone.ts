/**
 * `loadBackbone`: an ONNX backbone (ONNX Runtime: native CPU engine or onnxruntime-web) + SNARM's
 * patch-feature recipe (snarm-method.md §1) → channels-last {@link FeatureGrid} patch features.
 * @module
 */

import type { FeatureGrid } from "../types.ts";
import { sha256Hex } from "../util/hash.ts";
import { type BackbonePreset, getPreset } from "./presets.ts";
import { type ChannelsFirstMap, snarmFeatures, vitTokensToGrid } from "./recipe.ts";
import {
  type EngineChoice,
  type EngineName,
  type ExecutionProviderName,
  openTapSession,
  readModelBytes,
  resolveEngine,
  type TapMap,
  type TapSession,
} from "./session.ts";

/** Options of {@link loadBackbone}; each overrides the preset's field. */
export interface LoadBackboneOptions {
  /** ONNX model path/URL, or the model bytes (required for presets without `modelPath`). */
  modelPath?: string | URL | Uint8Array;
  /** Tensor names to tap, in groups (e.g. your export's names of DINOv2 blocks 1..8). */
  taps?: string[][];
  /** Square input size in pixels. */
  inputSize?: number;
  /** Square working grid. */
  grid?: number;
  pretrainDim?: number;
  targetDim?: number;
  registers?: number;
  /** Images per onnxruntime run (default 1); `embed` splits larger batches. */
  batchSize?: number;
  /**
   * ONNX Runtime engine: `"native"` (onnxruntime-node's CPU engine, `threads` intra-op threads),
   * `"wasm"` (onnxruntime-web, 1 thread; the browser path) or `"auto"` (default: native when
   * onnxruntime-node loads under Deno here, else wasm with a one-line notice).
   */
  engine?: EngineChoice;
  /** Intra-op threads of the native engine (default `navigator.hardwareConcurrency`). */
  threads?: number;
  /**
   * onnxruntime-web execution provider (default `"wasm"`; `"webgpu"` imports the webgpu bundle
   * lazily and makes engine `"auto"` pick onnxruntime-web).
   */
  executionProvider?: ExecutionProviderName;
  /** Image input name (default: the model's first input). */
  inputName?: string;
}

/** What {@link Backbone.describe} returns; goes into bank metadata. */
export interface BackboneDescription {
  backbone: string;
  kind: "cnn" | "vit";
  /** Model path/URL as given (or `"(bytes)"`). */
  model: string;
  /** sha256 (hex) of the model file bytes. */
  modelSha256: string;
  taps: string[][];
  registers: number;
  inputSize: number;
  grid: number;
  pretrainDim: number;
  targetDim: number;
  /** Feature dimension C of the output grid (= targetDim). */
  featureDim: number;
  /** ONNX Runtime engine the session runs on (`"auto"` resolved). */
  engine: EngineName;
  /** `"cpu"` for the native engine, else the onnxruntime-web EP. */
  executionProvider: ExecutionProviderName | "cpu";
  /** Intra-op threads (1 for onnxruntime-web). */
  threads: number;
  /** Short statement of the recipe applied. */
  recipe: string;
}

/** A loaded backbone: one onnxruntime session, reused for every {@link Backbone.embed} call. */
export interface Backbone {
  /** The effective configuration (preset with overrides applied). */
  readonly preset: BackbonePreset;
  /**
   * Patch features of a batch of preprocessed images.
   * @param batch `(B, 3, S, S)` row-major f32, S = `inputSize` (already normalised, e.g. ImageNet
   *   mean/std for both presets).
   * @param dims optional `[B, C, H, W]`; when omitted B = `batch.length / (3·S·S)`.
   * @returns channels-last `(B, grid, grid, targetDim)` f32 patch features.
   * @throws Error when dims/length do not match `(B, 3, S, S)` or tap outputs have unexpected ranks.
   */
  embed(batch: Float32Array, dims?: readonly number[]): Promise<FeatureGrid>;
  /** Raw tap outputs (float32, dequantised) of `(B, 3, S, S)` input, in flattened group order. */
  tapMaps(batch: Float32Array, dims?: readonly number[]): Promise<TapMap[]>;
  /** Backbone name, model hash, taps and dims (for bank metadata). */
  describe(): BackboneDescription;
  /** Free the onnxruntime session. */
  release(): Promise<void>;
}

function checkPositiveInt(v: number, what: string): void {
  if (!Number.isInteger(v) || v <= 0) {
    throw new Error(`backbone: ${what} must be a positive integer, got ${v}`);
  }
}

/** The feature settings of an eval or training run (field names as in their options objects). */
export interface RunFeatureOptions {
  /** Backbone preset name (default `"mobilenetv2"`). */
  backbone?: string;
  /** Tap tensor names in groups (overrides the preset's; e.g. your export's block outputs). */
  taps?: string[][];
  /** Name of the model's image input (default: its first graph input). */
  inputName?: string;
  /** ONNX model path for presets without an embedded model (e.g. `dinov2-vitb14-reg4`). */
  model?: string;
  /**
   * ONNX Runtime engine of the backbone (default "auto": the native CPU engine, else wasm; the
   * features are identical, the speed differs).
   */
  backboneEngine?: EngineChoice;
  /** Feature dimension (the recipe's Aggregator width, spec §1); default the preset's. */
  featureDim?: number;
}

/**
 * The backbone of an eval or training run at crop `size` and grid `grid` (= size / 8): the one
 * set-up `runEval` and `prepareTrainingSet` share.
 * @throws as {@link loadBackbone}.
 */
export function loadRunBackbone(
  o: RunFeatureOptions,
  size: number,
  grid: number,
): Promise<Backbone> {
  return loadBackbone(o.backbone ?? "mobilenetv2", {
    modelPath: o.model,
    inputSize: size,
    grid,
    targetDim: o.featureDim,
    engine: o.backboneEngine,
    taps: o.taps,
    inputName: o.inputName,
  });
}

/**
 * Load a backbone: read the ONNX model, add the preset's taps as outputs (dequantising int8
 * tensors, freeing fixed spatial input dims when `inputSize` differs; see `prepareTapModel`),
 * create the ONNX Runtime session once (engine `opts.engine`, default `"auto"`: onnxruntime-node's
 * native CPU engine when it loads, else onnxruntime-web's wasm EP) and return an {@link Backbone}.
 *
 * Presets: `"mobilenetv2"` (embedded int8 MobileNetV2, the default), `"mobilenetv2-wide"` (same
 * model, its wider expanded activations, 512-d features), `"dinov2-vitb14-reg4"`
 * (official SNARM recipe; needs `opts.modelPath` to your ONNX export, and `opts.taps` unless your
 * export uses the default block-output names, see `dinov2BlockTap`).
 *
 * @throws Error when the model file is missing (names it), a tap does not exist (names it), the
 *   preset is unknown, a required modelPath is absent, the engine name is unknown, or engine
 *   `"native"` is asked for where onnxruntime-node does not load.
 */
export async function loadBackbone(
  preset: BackbonePreset | string = "mobilenetv2",
  opts: LoadBackboneOptions = {},
): Promise<Backbone> {
  const base = typeof preset === "string" ? getPreset(preset) : structuredClone(preset);
  const model = opts.modelPath ?? base.modelPath;
  if (model === undefined) {
    throw new Error(
      `backbone preset '${base.name}' has no bundled model: pass opts.modelPath (an ONNX export` +
        ` of the backbone${base.kind === "vit" ? " exposing the block outputs to tap" : ""})`,
    );
  }
  const cfg: BackbonePreset = {
    ...base,
    modelPath: model instanceof Uint8Array ? undefined : String(model),
    taps: opts.taps ?? base.taps,
    inputSize: opts.inputSize ?? base.inputSize,
    // The working grid follows the input size (official: size // 8) unless given.
    grid: opts.grid ?? (opts.inputSize !== undefined ? Math.floor(opts.inputSize / 8) : base.grid),
    pretrainDim: opts.pretrainDim ?? base.pretrainDim,
    targetDim: opts.targetDim ?? base.targetDim,
    registers: opts.registers ?? base.registers,
  };
  for (const k of ["inputSize", "grid", "pretrainDim", "targetDim"] as const) {
    checkPositiveInt(cfg[k], k);
  }
  if (!cfg.taps.length || cfg.taps.some((g) => !g.length)) {
    throw new Error(`backbone '${cfg.name}': taps must be non-empty groups of tensor names`);
  }
  const batchSize = opts.batchSize ?? 1;
  checkPositiveInt(batchSize, "batchSize");
  if (opts.threads !== undefined) checkPositiveInt(opts.threads, "threads");
  const engine = await resolveEngine(opts.engine, opts.executionProvider);
  const bytes = model instanceof Uint8Array ? model : await readModelBytes(model);
  const what = model instanceof Uint8Array ? `${cfg.name} model (bytes)` : String(model);
  const flat = cfg.taps.flat();
  const session: TapSession = await openTapSession(bytes, flat, {
    inputSize: cfg.inputSize,
    batchSize,
    executionProvider: opts.executionProvider,
    engine,
    threads: opts.threads,
    inputName: opts.inputName,
    what,
  });
  const sha = await sha256Hex(bytes);
  const S = cfg.inputSize;

  const checkDims = (batch: Float32Array, dims?: readonly number[]): number[] => {
    const per = 3 * S * S;
    if (dims) {
      if (dims.length !== 4) {
        throw new Error(`backbone '${cfg.name}': input dims must be (B, 3, H, W), got [${dims}]`);
      }
      if (dims[1] !== 3) {
        throw new Error(
          `backbone '${cfg.name}': input must have 3 channels (RGB), got ${
            dims[1]
          } in dims [${dims}]`,
        );
      }
      if (dims[2] !== S || dims[3] !== S) {
        throw new Error(
          `backbone '${cfg.name}': input must be ${S}×${S} (inputSize), got ${dims[2]}×${dims[3]}`,
        );
      }
      if (dims[0] * per !== batch.length) {
        throw new Error(
          `backbone '${cfg.name}': batch has ${batch.length} values, dims [${dims}] need ${
            dims[0] * per
          }`,
        );
      }
      return [...dims];
    }
    if (batch.length === 0 || batch.length % per !== 0) {
      throw new Error(
        `backbone '${cfg.name}': batch length ${batch.length} is not a multiple of 3·${S}·${S} = ${per}`,
      );
    }
    return [batch.length / per, 3, S, S];
  };

  const runChunks = async (batch: Float32Array, dims: number[]): Promise<TapMap[][]> => {
    const per = 3 * S * S;
    const chunks: TapMap[][] = [];
    for (let b0 = 0; b0 < dims[0]; b0 += batchSize) {
      const nb = Math.min(batchSize, dims[0] - b0);
      const x = batch.subarray(b0 * per, (b0 + nb) * per);
      chunks.push(await session.run(x, [nb, 3, S, S]));
    }
    return chunks;
  };

  const toMap = (m: TapMap): ChannelsFirstMap => {
    if (cfg.kind === "vit") {
      if (m.dims.length !== 3) {
        throw new Error(
          `backbone '${cfg.name}': ViT tap '${m.name}' has dims [${m.dims}], expected (B, T, C)`,
        );
      }
      const [b, t, c] = m.dims;
      return vitTokensToGrid(m.data, b, t, c, cfg.registers, `ViT tap '${m.name}'`);
    }
    if (m.dims.length !== 4) {
      throw new Error(
        `backbone '${cfg.name}': CNN tap '${m.name}' has dims [${m.dims}], expected (B, C, h, w)`,
      );
    }
    const [b, c, h, w] = m.dims;
    return { data: m.data, b, c, h, w };
  };

  return {
    preset: cfg,
    async embed(batch, dims) {
      const d = checkDims(batch, dims);
      const chunks = await runChunks(batch, d);
      const hw = cfg.grid * cfg.grid;
      const out = new Float32Array(d[0] * hw * cfg.targetDim);
      let off = 0;
      for (const maps of chunks) {
        let i = 0;
        const groups = cfg.taps.map((g) => g.map(() => toMap(maps[i++])));
        const fg = snarmFeatures(groups, {
          gridH: cfg.grid,
          gridW: cfg.grid,
          pretrainDim: cfg.pretrainDim,
          targetDim: cfg.targetDim,
        });
        out.set(fg.data, off);
        off += fg.data.length;
      }
      return { data: out, n: d[0], h: cfg.grid, w: cfg.grid, c: cfg.targetDim };
    },
    async tapMaps(batch, dims) {
      const d = checkDims(batch, dims);
      const chunks = await runChunks(batch, d);
      if (chunks.length === 1) return chunks[0];
      return chunks[0].map((m0, t) => {
        const parts = chunks.map((c) => c[t]);
        const data = new Float32Array(parts.reduce((a, p) => a + p.data.length, 0));
        let o = 0;
        for (const p of parts) {
          data.set(p.data, o);
          o += p.data.length;
        }
        return { name: m0.name, dims: [d[0], ...m0.dims.slice(1)], data };
      });
    },
    describe() {
      return {
        backbone: cfg.name,
        kind: cfg.kind,
        model: cfg.modelPath ?? "(bytes)",
        modelSha256: sha,
        taps: cfg.taps.map((g) => [...g]),
        registers: cfg.registers,
        inputSize: cfg.inputSize,
        grid: cfg.grid,
        pretrainDim: cfg.pretrainDim,
        targetDim: cfg.targetDim,
        featureDim: cfg.targetDim,
        engine: session.engine,
        executionProvider: session.executionProvider,
        threads: session.threads,
        recipe: (cfg.kind === "vit" ? `drop 1+${cfg.registers} tokens; ` : "") +
          `group mean; bilinear(align_corners=False) to ${cfg.grid}x${cfg.grid}; ` +
          `MeanMapper ${cfg.pretrainDim}; Aggregator ${cfg.targetDim} (snarm-method.md §1)`,
      };
    },
    release: () => session.release(),
  };
}
