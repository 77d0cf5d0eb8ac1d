/**
 * ONNX Runtime session that returns tapped intermediate tensors as float32 maps.
 *
 * Two engines:
 * - `"native"`: ONNX Runtime's native CPU engine, `npm:onnxruntime-node@1.30.0` (N-API; its CPU
 *   binaries ship in the package, so no install script is needed under Deno), CPU EP with
 *   `intraOpNumThreads` = `navigator.hardwareConcurrency` by default. Imported lazily, only
 *   under Deno; the module stays importable where the package is absent.
 * - `"wasm"`: `npm:onnxruntime-web@1.30.0`, wasm EP (`ort.env.wasm.numThreads = 1`) by default;
 *   the webgpu EP (`npm:onnxruntime-web@1.30.0/webgpu`, `executionProviders: ["webgpu"]`) is
 *   imported lazily only when asked (see /work/shared/docs/environment.md §5). The browser path
 *   and the fallback.
 *
 * `"auto"` (the default) picks `"native"` when onnxruntime-node loads, else `"wasm"` with a
 * one-line notice; an explicit `executionProvider: "webgpu"` makes `"auto"` pick `"wasm"`
 * (onnxruntime-web).
 * @module
 */

import { BackboneModelError, prepareTapModel, type TapOutput } from "./onnx_graph.ts";

/** Execution provider of the onnxruntime-web session. */
export type ExecutionProviderName = "wasm" | "webgpu";

/** The ONNX Runtime engine a session runs on: native CPU (onnxruntime-node) or onnxruntime-web. */
export type EngineName = "native" | "wasm";

/** Engine request: `"auto"` = `"native"` when onnxruntime-node loads here, else `"wasm"`. */
export type EngineChoice = EngineName | "auto";

const ENGINE_CHOICES: readonly string[] = ["native", "wasm", "auto"];

type Ort = typeof import("npm:onnxruntime-web@1.30.0");
type OrtNative = typeof import("npm:onnxruntime-node@1.30.0");

let nativeCache: Promise<OrtNative | Error> | undefined;

/**
 * Lazily import onnxruntime-node (once per process). Resolves to the module, or to the Error that
 * explains why it is unavailable (not running under Deno, package absent, or its native binary
 * does not load on this platform). Never rejects.
 */
export function loadOrtNative(): Promise<OrtNative | Error> {
  if (!nativeCache) {
    nativeCache = (async () => {
      if (!("Deno" in globalThis)) {
        return new Error("onnxruntime-node is only used under Deno");
      }
      try {
        // Full npm: specifier, as for onnxruntime-web (project rule).
        // deno-lint-ignore no-import-prefix
        const ort: OrtNative = await import("npm:onnxruntime-node@1.30.0");
        if (!ort.listSupportedBackends().some((b) => b.name === "cpu")) {
          return new Error("onnxruntime-node has no cpu backend on this platform");
        }
        return ort;
      } catch (e) {
        return e instanceof Error ? e : new Error(String(e));
      }
    })();
  }
  return nativeCache;
}

/**
 * The `"auto"` rule of the stages with a native CPU engine (bank search, residual fusion, head):
 * native when the WebGPU adapter is a CPU (lavapipe, SwiftShader) or absent and onnxruntime-node
 * loads.
 * @param gpu the adapter's description, or null without one.
 */
export async function nativePreferred(gpu: { info: { isCpu: boolean } } | null): Promise<boolean> {
  return (!gpu || gpu.info.isCpu) && !((await loadOrtNative()) instanceof Error);
}

let fallbackNoticeShown = false;

/**
 * Validate an engine request and resolve `"auto"`: `"native"` when onnxruntime-node loads (and no
 * webgpu EP was asked for), else `"wasm"` with a one-line notice (once per process).
 * @throws Error on an unknown engine name, on `"native"` with the webgpu EP, or on `"native"`
 *   when onnxruntime-node cannot be loaded (the message gives the reason).
 */
export async function resolveEngine(
  engine: EngineChoice = "auto",
  executionProvider?: ExecutionProviderName,
): Promise<EngineName> {
  if (!ENGINE_CHOICES.includes(engine)) {
    throw new Error(
      `backbone: unknown engine '${engine}'; use "native" (onnxruntime-node), "wasm" ` +
        `(onnxruntime-web) or "auto"`,
    );
  }
  if (
    executionProvider !== undefined && executionProvider !== "wasm" &&
    executionProvider !== "webgpu"
  ) {
    throw new Error(
      `backbone: unknown executionProvider '${executionProvider}'; use "wasm" or "webgpu"`,
    );
  }
  if (engine === "wasm") return "wasm";
  if (executionProvider === "webgpu") {
    if (engine === "native") {
      throw new Error(
        `backbone: engine "native" runs ONNX Runtime's CPU EP; the webgpu EP needs engine ` +
          `"wasm" (onnxruntime-web) or "auto"`,
      );
    }
    return "wasm";
  }
  const ort = await loadOrtNative();
  if (!(ort instanceof Error)) return "native";
  if (engine === "native") {
    throw new Error(`backbone: engine "native" unavailable: onnxruntime-node: ${ort.message}`);
  }
  if (!fallbackNoticeShown) {
    fallbackNoticeShown = true;
    console.warn(
      `snarm backbone: onnxruntime-node unavailable (${
        ort.message.split("\n")[0]
      }); using onnxruntime-web (wasm)`,
    );
  }
  return "wasm";
}

const ortCache = new Map<ExecutionProviderName, Promise<Ort>>();

/** Lazily import the onnxruntime-web bundle for `ep` (once per process). */
export function loadOrt(ep: ExecutionProviderName): Promise<Ort> {
  let p = ortCache.get(ep);
  if (!p) {
    // Full npm: specifiers so the toolkit also works when imported by URL (project rule).
    const mod: Promise<Ort> = ep === "webgpu"
      // deno-lint-ignore no-import-prefix
      ? import("npm:onnxruntime-web@1.30.0/webgpu")
      // deno-lint-ignore no-import-prefix
      : import("npm:onnxruntime-web@1.30.0");
    p = mod.then((ort) => {
      ort.env.wasm.numThreads = 1;
      // In a page, where the .wasm files are served (set by web/app.ts); Deno finds them itself.
      const paths = (globalThis as { SNARM_ORT_WASM_PATHS?: string }).SNARM_ORT_WASM_PATHS;
      if (paths) ort.env.wasm.wasmPaths = paths;
      return ort;
    });
    ortCache.set(ep, p);
  }
  return p;
}

/** One tapped tensor: row-major float32 with its dims, e.g. `(B, C, h, w)` or `(B, T, C)`. */
export interface TapMap {
  name: string;
  dims: number[];
  data: Float32Array;
}

/**
 * Read model bytes from a filesystem path, a `file:` URL or an `http(s):` URL.
 * @throws Error naming the path when the file is missing or unreadable.
 */
export async function readModelBytes(path: string | URL): Promise<Uint8Array> {
  const s = String(path);
  const url = path instanceof URL ? path : /^(file|https?):/.test(s) ? new URL(s) : undefined;
  try {
    if (url && url.protocol !== "file:") {
      const r = await fetch(url);
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      return new Uint8Array(await r.arrayBuffer());
    }
    return await Deno.readFile(url ?? s);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`backbone model file not found: ${s}`);
    }
    throw new Error(`cannot read backbone model file ${s}: ${(e as Error).message}`);
  }
}

/** Options for {@link openTapSession}. */
export interface TapSessionOptions {
  /** Square spatial input size; frees fixed H/W input dims when different. */
  inputSize?: number;
  /** Batch size the session will be run with (frees a fixed batch dim when different). */
  batchSize?: number;
  /** Image input name (default: first non-initializer graph input). */
  inputName?: string;
  /**
   * onnxruntime-web execution provider (engine `"wasm"`; default `"wasm"`). `"webgpu"` makes
   * engine `"auto"` resolve to `"wasm"`.
   */
  executionProvider?: ExecutionProviderName;
  /** Engine (default `"auto"`: native when onnxruntime-node loads, else wasm). */
  engine?: EngineChoice;
  /**
   * Intra-op threads of the native engine (default `navigator.hardwareConcurrency`). The wasm
   * engine always uses 1 thread.
   */
  threads?: number;
  /** Prune nodes the taps do not need (default true). */
  prune?: boolean;
  /** Label used in error messages (default: the path, or "ONNX model (bytes)"). */
  what?: string;
}

type AnySession =
  | import("npm:onnxruntime-web@1.30.0").InferenceSession
  | import("npm:onnxruntime-node@1.30.0").InferenceSession;

/** An ONNX Runtime session returning the requested taps; create with {@link openTapSession}. */
export class TapSession {
  private constructor(
    private readonly session: AnySession,
    private readonly ort: Ort | OrtNative,
    readonly inputName: string,
    readonly inputDims: (number | string)[],
    readonly taps: TapOutput[],
    /** The export's static `[H, W]` when freed for another input size (null otherwise). */
    readonly staticSize: [number, number] | null,
    readonly what: string,
    /** Engine the session runs on. */
    readonly engine: EngineName,
    /** `"cpu"` for the native engine, else the onnxruntime-web EP. */
    readonly executionProvider: ExecutionProviderName | "cpu",
    /** Intra-op threads (1 for onnxruntime-web). */
    readonly threads: number,
  ) {}

  /** @internal use {@link openTapSession}. */
  static async create(
    model: string | URL | Uint8Array,
    taps: readonly string[],
    opts: TapSessionOptions = {},
  ): Promise<TapSession> {
    const what = opts.what ?? (model instanceof Uint8Array ? "ONNX model (bytes)" : String(model));
    const engine = await resolveEngine(opts.engine, opts.executionProvider);
    const threads = opts.threads ?? navigator.hardwareConcurrency ?? 1;
    if (!Number.isInteger(threads) || threads <= 0) {
      throw new Error(`backbone: threads must be a positive integer, got ${threads}`);
    }
    const bytes = model instanceof Uint8Array ? model : await readModelBytes(model);
    const prep = prepareTapModel(bytes, taps, {
      inputName: opts.inputName,
      inputSize: opts.inputSize,
      batchSize: opts.batchSize,
      prune: opts.prune,
      what,
    });
    if (engine === "native") {
      const ort = await loadOrtNative();
      if (ort instanceof Error) throw ort; // resolveEngine checked it loads
      let session;
      try {
        session = await ort.InferenceSession.create(prep.bytes, {
          executionProviders: ["cpu"],
          intraOpNumThreads: threads,
        });
      } catch (e) {
        throw new BackboneModelError(
          `${what}: onnxruntime-node (cpu) could not create a session: ${(e as Error).message}`,
        );
      }
      return new TapSession(
        session,
        ort,
        prep.inputName,
        prep.inputDims,
        prep.taps,
        prep.staticSize,
        what,
        "native",
        "cpu",
        threads,
      );
    }
    const ep = opts.executionProvider ?? "wasm";
    const ort = await loadOrt(ep);
    let session;
    try {
      session = await ort.InferenceSession.create(prep.bytes, { executionProviders: [ep] });
    } catch (e) {
      throw new BackboneModelError(
        `${what}: onnxruntime-web (${ep}) could not create a session: ${(e as Error).message}`,
      );
    }
    return new TapSession(
      session,
      ort,
      prep.inputName,
      prep.inputDims,
      prep.taps,
      prep.staticSize,
      what,
      "wasm",
      ep,
      1,
    );
  }

  /**
   * Run the model on `input` (row-major float32 with `dims`, e.g. `(B, 3, H, W)`) and return the
   * taps in request order, each as float32 with the dims reported by onnxruntime.
   * @throws Error when the input dims contradict the model's fixed input dims or the run fails.
   */
  async run(input: Float32Array, dims: readonly number[]): Promise<TapMap[]> {
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== input.length) {
      throw new Error(
        `${this.what}: input has ${input.length} values but dims [${dims.join(", ")}] need ${n}`,
      );
    }
    if (this.inputDims.length && this.inputDims.length !== dims.length) {
      throw new Error(
        `${this.what}: input '${this.inputName}' expects rank ${this.inputDims.length} ` +
          `[${this.inputDims.join(", ")}], got dims [${dims.join(", ")}]`,
      );
    }
    this.inputDims.forEach((d, i) => {
      if (typeof d === "number" && d !== dims[i]) {
        throw new Error(
          `${this.what}: input '${this.inputName}' expects dims [${this.inputDims.join(", ")}]` +
            ` (dim ${i} = ${d}), got [${dims.join(", ")}]`,
        );
      }
    });
    const t = new this.ort.Tensor("float32", input, dims as number[]);
    let res;
    try {
      res = await this.session.run({ [this.inputName]: t });
    } catch (e) {
      const msg = (e as Error).message;
      if (this.staticSize) {
        const [h, w] = this.staticSize;
        throw new Error(
          `${this.what}: the export has a static ${h}×${w} input '${this.inputName}' and fails ` +
            `at ${dims[2]}×${dims[3]}: a ViT export bakes the patch grid and the position-` +
            `embedding interpolation in. Run at \`inputSize\` ${h}, or re-export at ${dims[2]}² ` +
            `(or with dynamic height/width axes). onnxruntime: ${msg}`,
        );
      }
      throw new Error(`${this.what}: onnxruntime run failed: ${msg}`);
    } finally {
      t.dispose();
    }
    const out: TapMap[] = [];
    for (const tap of this.taps) {
      const r = res[tap.output];
      if (!r) throw new Error(`${this.what}: session returned no output '${tap.output}'`);
      if (r.type !== "float32") {
        throw new Error(`${this.what}: tap '${tap.tap}' came back as ${r.type}, expected float32`);
      }
      const data = (await r.getData()) as Float32Array;
      out.push({ name: tap.tap, dims: r.dims.map(Number), data: new Float32Array(data) });
      r.dispose();
    }
    return out;
  }

  /** Release the onnxruntime session (native or web). */
  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Load an ONNX model (path, URL or bytes), add `taps` as float32 outputs (dequantising quantised
 * tensors, see {@link prepareTapModel}) and create an ONNX Runtime session from the re-encoded
 * bytes on `opts.engine` (default `"auto"`: onnxruntime-node's CPU engine when it loads, else
 * onnxruntime-web). Created once; run it many times.
 * @throws Error naming the file when it is missing, BackboneModelError for unknown taps, Error on
 *   an unknown engine name or an unavailable `"native"` engine.
 */
export function openTapSession(
  model: string | URL | Uint8Array,
  taps: readonly string[],
  opts: TapSessionOptions = {},
): Promise<TapSession> {
  return TapSession.create(model, taps, opts);
}
