/**
 * A tiny command list: the head forward is recorded once per configuration as a list of compute
 * dispatches and texture copies with pre-built bind groups, then encoded into one command buffer
 * (one `queue.submit` per forward; a submit round trip costs ~12 ms on lavapipe).
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { createUniform } from "../gpu/buffers.ts";

/** One recorded GPU step. */
export type Step =
  | {
    kind: "dispatch";
    label: string;
    pipeline: GPUComputePipeline;
    bindGroup: GPUBindGroup;
    workgroups: [number, number, number];
  }
  | { kind: "copy"; label: string; encode: (enc: GPUCommandEncoder) => void };

/** Encode steps: consecutive dispatches share one compute pass. */
export function encodeSteps(enc: GPUCommandEncoder, steps: Step[]): void {
  let pass: GPUComputePassEncoder | null = null;
  for (const s of steps) {
    if (s.kind === "dispatch") {
      if (!pass) pass = enc.beginComputePass();
      pass.setPipeline(s.pipeline);
      pass.setBindGroup(0, s.bindGroup);
      const [x, y, z] = s.workgroups;
      if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
    } else {
      if (pass) {
        pass.end();
        pass = null;
      }
      s.encode(enc);
    }
  }
  if (pass) pass.end();
}

export { type Bindable, bindGroup } from "../gpu/pipeline.ts";

/** A uniform buffer from u32 words (padded to 16 bytes; lib/gpu/buffers.ts `createUniform`). */
export function uniformWords(gpu: Gpu, words: number[], label: string): GPUBuffer {
  return createUniform(gpu, Uint32Array.from(words), label);
}
