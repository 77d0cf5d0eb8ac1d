/**
 * Memory bank (spec §2–3): random cap + PatchCore greedy k-centre coreset on the GPU, bank files
 * (safetensors with provenance metadata), exact L2 top-k bank search (WGSL, or ONNX Runtime's
 * native CPU engine on CPU adapters / without an adapter); the inter-residual against the bank is
 * the residual stage (lib/residual/inter.ts).
 *
 * @example
 * ```ts
 * import { fileURLToPath } from "node:url";
 * import { buildBank, createBankIndex } from "./mod.ts";
 * import { loadBackbone } from "../backbone/mod.ts";
 * import { computeInterResidual } from "../residual/mod.ts";
 * import { loadSample, loadSplit } from "../data/mod.ts";
 * const root = fileURLToPath(new URL("../../data/hazelnut_toy", import.meta.url));
 * const split = loadSplit(root, "hazelnut");
 * const bb = await loadBackbone("mobilenetv2");
 * const embed = async (r: (typeof split.train)[0]) => bb.embed((await loadSample(r)).image);
 * // coreset of the normal patches of two training images (the default bank keeps T = 10 000)
 * const train = [await embed(split.train[0]), await embed(split.train[1])];
 * const desc = bb.describe();
 * const bank = await buildBank(train, {
 *   size: 500,
 *   backbone: desc.backbone,
 *   taps: desc.taps,
 *   inputSize: 392,
 * });
 * const index = await createBankIndex(null, bank.features, bank.meta.dim); // null: no GPU needed
 * // k = 3 nearest bank rows of every test patch and the signed inter-residual (spec §3)
 * const { indices, residual } = await computeInterResidual(await embed(split.test[0]), index, 3);
 * if (indices.length !== 49 * 49 * 3 || residual.c !== 256) throw new Error("top-k, residual");
 * index.destroy();
 * ```
 * @module
 */
export * from "./bank.ts";
export * from "./coreset.ts";
export * from "./search.ts";
