/**
 * The one command list of snarm's GPU programs: a forward (lib/model/gpu_head.ts, maps) or a
 * training step (lib/train/gpu/graph.ts `KernelSequence`) is recorded once as a list of compute
 * dispatches with pre-built bind groups and other commands (copies, clears), then encoded into one
 * command buffer by {@link encodeSteps} (one `queue.submit` per replay; a submit round trip costs
 * ~12 ms on lavapipe).
 * @module
 */
import type { Gpu } from "./device.ts";
import { createUniform } from "./buffers.ts";

/** One recorded GPU step. */
export type Step =
  | {
    kind: "dispatch";
    label: string;
    pipeline: GPUComputePipeline;
    bindGroup: GPUBindGroup;
    workgroups: [number, number, number];
  }
  /** Any other command (a buffer or texture copy, a clear), encoded outside compute passes. */
  | { kind: "copy"; label: string; encode: (enc: GPUCommandEncoder) => void };

/** Encode steps: consecutive dispatches share one compute pass (labelled `label`). */
export function encodeSteps(enc: GPUCommandEncoder, steps: readonly Step[], label?: string): void {
  let pass: GPUComputePassEncoder | null = null;
  for (const s of steps) {
    if (s.kind === "dispatch") {
      if (!pass) pass = enc.beginComputePass(label ? { label } : undefined);
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

export { type Bindable, bindGroup } from "./pipeline.ts";

/** A uniform buffer from u32 words (padded to 16 bytes; lib/gpu/buffers.ts `createUniform`). */
export function uniformWords(gpu: Gpu, words: number[], label: string): GPUBuffer {
  return createUniform(gpu, Uint32Array.from(words), label);
}
