/**
 * Memory bank (spec §2–3): random cap + PatchCore greedy k-centre coreset on the GPU, bank files
 * (safetensors with provenance metadata), exact L2 top-k bank search (WGSL, or ONNX Runtime's
 * native CPU engine on CPU adapters / without an adapter) and the signed inter-residual.
 *
 * ```ts
 * const bank = await buildBank(trainFeatures, { size: 10_000, backbone, taps, inputSize: 392 });
 * const index = await createBankIndex(await tryGetGpu(), bank.features, bank.meta.dim);
 * const { indices, distances, residual } = await computeInterResidual(testFeatures, index, 3);
 * ```
 * @module
 */
export * from "./bank.ts";
export * from "./coreset.ts";
export * from "./search.ts";
