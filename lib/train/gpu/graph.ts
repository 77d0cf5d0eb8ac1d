/**
 * A recorded sequence of WGSL compute dispatches over persistent GPU tensors: the execution model
 * of snarm's training kernels. A training step has fixed shapes, so every kernel of the forward,
 * the backward and the optimizer is recorded once (pipeline, bind group, uniform parameters,
 * workgroup count) and replayed each step with one submit; only the data and a few uniforms
 * (learning rate, step) change between steps.
 *
 * Conventions of every training kernel (`wgsl/train/*.wgsl`):
 * - binding 0 is a uniform block of 32-bit words (u32, or f32 bit patterns from {@link f32bits});
 *   bindings 1, 2, … are the tensors in the order given to {@link KernelSequence.dispatch};
 * - tensors are flat f32 (or u32/i32) storage buffers bound whole; an operand is addressed by an
 *   element offset (and strides) passed in the uniform words, so many logical tensors (e.g. every
 *   parameter of the head) can live in one buffer;
 * - a buffer may appear only once per dispatch when it is written (WebGPU forbids writable
 *   aliasing).
 *
 * @example
 * ```ts
 * import { tryGetGpu } from "../../gpu/device.ts";
 * import { KernelSequence } from "./graph.ts";
 * import { recordPointwise } from "./pointwise.ts";
 * const gpu = await tryGetGpu(); // training needs a WebGPU adapter (lavapipe on a CPU)
 * if (gpu) {
 *   const seq = new KernelSequence(gpu, "demo");
 *   const x = seq.tensor(new Float32Array([-1, 0, 2]), "x");
 *   const y = seq.tensor(3, "y");
 *   // record once (validated, pipelines compiled), replay with run()
 *   const [xr, yr] = [{ t: x, off: 0 }, { t: y, off: 0 }];
 *   await recordPointwise(seq, { op: "relu", x: xr, ldx: 3, y: yr, ldy: 3, rows: 1, cols: 3 });
 *   await seq.run();
 *   if ((await seq.read(y)).join() !== "0,0,2") throw new Error("relu");
 *   seq.destroy();
 * }
 * ```
 * @module
 */
import { type Gpu, GpuError, withErrorScope } from "../../gpu/device.ts";
import { fillTemplate, getPipeline, loadWgsl } from "../../gpu/pipeline.ts";
import { createStorage, readBuffer } from "../../gpu/buffers.ts";
import { createUniform } from "../../gpu/buffers.ts";
import { encodeSteps, type Step } from "../../gpu/steps.ts";

/** A persistent GPU tensor: a whole storage buffer of `length` 32-bit elements. */
export interface Tensor {
  buf: GPUBuffer;
  /** Number of 32-bit elements. */
  length: number;
  label: string;
}

/** An operand: tensor `t` from element `off` (default 0). */
export interface Ref {
  t: Tensor;
  off?: number;
}

/** A recorded dispatch whose uniform words can be rewritten between runs. */
export interface Dispatch {
  label: string;
  /** Overwrite the uniform words (same count as recorded). */
  setParams(words: ArrayLike<number>): void;
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** The u32 bit pattern of the f32 nearest to `x` (for f32 uniform words). */
export function f32bits(x: number): number {
  F32[0] = x;
  return U32[0];
}

/**
 * Split `n` workgroups into a 2-D grid under the per-dimension limit (65535): kernels then use
 * `wid.x + wid.y * num_workgroups.x` and bound-check.
 */
export function grid2d(n: number, limit = 65535): [number, number, number] {
  if (n <= limit) return [Math.max(1, n), 1, 1];
  const y = Math.ceil(n / limit);
  return [Math.ceil(n / y), y, 1];
}

/** Options of {@link KernelSequence.dispatch}. */
export interface DispatchOptions {
  /** WGSL file name under `wgsl/` (e.g. `train/gemm.wgsl`). */
  shader: string;
  /** `{{KEY}}` template values (compile-time constants); part of the pipeline cache key. */
  template?: Record<string, string | number>;
  /** Entry point (default `main`). */
  entry?: string;
  /** Uniform words (binding 0); u32 values or {@link f32bits} patterns. Empty = no uniform. */
  params: ArrayLike<number>;
  /** Tensors bound at 1, 2, … in order. */
  bindings: Tensor[];
  /** Workgroup counts (x, y, z). */
  workgroups: [number, number?, number?];
  /** Label for errors and profiling (default: the shader name). */
  label?: string;
}

/**
 * An ordered list of compute dispatches (plus buffer clears and copies) over persistent tensors,
 * replayed by {@link KernelSequence.run} in one command buffer.
 */
export class KernelSequence {
  private cmds: Step[] = [];
  private readonly owned: GPUBuffer[] = [];

  constructor(readonly gpu: Gpu, readonly label = "kernels") {}

  /** Number of recorded commands. */
  get length(): number {
    return this.cmds.length;
  }

  /**
   * Allocate a tensor: zero-filled `length` elements, or a copy of `data`.
   * @throws {GpuError} when it exceeds the device's buffer size limit.
   */
  tensor(data: number | Float32Array | Uint32Array | Int32Array, label: string): Tensor {
    const length = typeof data === "number" ? data : data.length;
    const buf = createStorage(
      this.gpu,
      typeof data === "number"
        ? Math.max(1, length) * 4
        : new Uint32Array(data.buffer as ArrayBuffer, data.byteOffset, data.length),
      label,
    );
    this.owned.push(buf);
    return { buf, length, label };
  }

  /** Write `data` into `t` at element `offset` (queued before the next submit). */
  upload(t: Tensor, data: Float32Array | Uint32Array | Int32Array, offset = 0): void {
    if (offset + data.length > t.length) {
      throw new GpuError(
        `${t.label}: writing ${data.length} values at ${offset} overflows its ${t.length}`,
      );
    }
    this.gpu.device.queue.writeBuffer(
      t.buf,
      offset * 4,
      data.buffer as ArrayBuffer,
      data.byteOffset,
      data.byteLength,
    );
  }

  /** Read `count` f32 values of `t` from element `offset` (waits for queued work). */
  async read(t: Tensor, offset = 0, count = t.length - offset): Promise<Float32Array> {
    const bytes = await readBuffer(this.gpu, t.buf, count * 4, offset * 4);
    return new Float32Array(bytes, 0, count);
  }

  /** Read `count` u32 values of `t` from element `offset`. */
  async readU32(t: Tensor, offset = 0, count = t.length - offset): Promise<Uint32Array> {
    const bytes = await readBuffer(this.gpu, t.buf, count * 4, offset * 4);
    return new Uint32Array(bytes, 0, count);
  }

  /** Record zero-filling `t`. */
  clear(t: Tensor): void {
    this.cmds.push({ kind: "copy", label: "clear", encode: (enc) => enc.clearBuffer(t.buf) });
  }

  /** Record copying `count` elements of `src` (from `srcOff`) to `dst` (at `dstOff`). */
  copy(src: Tensor, srcOff: number, dst: Tensor, dstOff: number, count: number): void {
    if (srcOff + count > src.length || dstOff + count > dst.length) {
      throw new GpuError(`copy ${src.label} → ${dst.label}: ${count} values out of range`);
    }
    this.cmds.push({
      kind: "copy",
      label: "copy",
      encode: (enc) => enc.copyBufferToBuffer(src.buf, srcOff * 4, dst.buf, dstOff * 4, count * 4),
    });
  }

  /**
   * Record one dispatch (compiles the pipeline on first use of a shader/template pair).
   * @throws {GpuError} on a shader compile error or a workgroup count over the device limit.
   */
  async dispatch(o: DispatchOptions): Promise<Dispatch> {
    const label = o.label ?? o.shader;
    const code = o.template ? fillTemplate(await loadWgsl(o.shader), o.template) : await loadWgsl(
      o.shader,
    );
    const key = `${o.shader}|${JSON.stringify(o.template ?? {})}`;
    const pipeline = await getPipeline(this.gpu, key, code, o.entry ?? "main");
    const wg: [number, number, number] = [
      o.workgroups[0],
      o.workgroups[1] ?? 1,
      o.workgroups[2] ?? 1,
    ];
    const lim = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    if (wg.some((n) => !Number.isInteger(n) || n < 0 || n > lim)) {
      throw new GpuError(`${label}: workgroup count ${wg.join("×")} outside 0..${lim} per axis`);
    }
    const entries: GPUBindGroupEntry[] = [];
    let uniform: GPUBuffer | null = null;
    const nWords = o.params.length;
    if (nWords > 0) {
      uniform = createUniform(this.gpu, Uint32Array.from(o.params), label + ".params");
      this.owned.push(uniform);
      entries.push({ binding: 0, resource: { buffer: uniform } });
    }
    o.bindings.forEach((t, i) => entries.push({ binding: i + 1, resource: { buffer: t.buf } }));
    const bindGroup = await withErrorScope(
      this.gpu.device,
      `binding ${label}`,
      () =>
        Promise.resolve(this.gpu.device.createBindGroup({
          label,
          layout: pipeline.getBindGroupLayout(0),
          entries,
        })),
    );
    this.cmds.push({ kind: "dispatch", pipeline, bindGroup, workgroups: wg, label });
    const gpu = this.gpu;
    return {
      label,
      setParams(words: ArrayLike<number>): void {
        if (!uniform || words.length !== nWords) {
          throw new GpuError(`${label}: setParams needs ${nWords} words, got ${words.length}`);
        }
        gpu.device.queue.writeBuffer(uniform, 0, Uint32Array.from(words));
      },
    };
  }

  /** Append every command of `other` (same device) after this sequence's commands. */
  append(other: KernelSequence): void {
    this.cmds.push(...other.cmds);
  }

  /** Encode the recorded commands into `enc` (consecutive dispatches share one compute pass). */
  encode(enc: GPUCommandEncoder): void {
    encodeSteps(enc, this.cmds, this.label);
  }

  /**
   * Replay the recorded commands once and wait for completion.
   * @throws {GpuError} on a validation / out-of-memory error or a lost device.
   */
  async run(): Promise<void> {
    await withErrorScope(this.gpu.device, `running ${this.label}`, async () => {
      const enc = this.gpu.device.createCommandEncoder({ label: this.label });
      this.encode(enc);
      this.gpu.device.queue.submit([enc.finish()]);
      await this.gpu.device.queue.onSubmittedWorkDone();
    });
  }

  /**
   * Run each recorded command in its own submit and return the wall time (ms) summed per label,
   * largest first: a profile of where a step's time goes (submit overhead included).
   */
  async profile(): Promise<Array<{ label: string; ms: number; count: number }>> {
    const acc = new Map<string, { ms: number; count: number }>();
    const all = this.cmds;
    try {
      for (const c of all) {
        this.cmds = [c];
        const t0 = performance.now();
        await this.run();
        const label = c.label;
        const e = acc.get(label) ?? { ms: 0, count: 0 };
        e.ms += performance.now() - t0;
        e.count++;
        acc.set(label, e);
      }
    } finally {
      this.cmds = all;
    }
    return [...acc].map(([label, e]) => ({ label, ...e })).sort((a, b) => b.ms - a.ms);
  }

  /** Free every buffer this sequence allocated (tensors and uniforms). */
  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.owned.length = 0;
    this.cmds = [];
  }
}
