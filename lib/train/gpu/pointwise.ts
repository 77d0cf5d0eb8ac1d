/**
 * Element-wise training kernels of the SNARM head on the GPU (spec §6): activations ReLU (decoder
 * head, step 5), SiLU (Mamba conv output, "Mamba v1" step 2), softplus (Δ, step 3) and sigmoid
 * (unary map, §5 step 2) with their VJPs, the Mamba gate out = y·silu(z) (step 6) and the plain
 * product out = x·m (inverted-dropout mask, §6 step 3; its VJP is the same product with dy).
 * Shader: `wgsl/train/pointwise.wgsl`. TypeScript references: lib/ops/pointwise.ts.
 *
 * Also home of {@link recordTrainKernel}, the recording helper the Group B kernels share: it
 * validates operand extents, binds each distinct tensor once (so several operands may live in one
 * tensor, e.g. weight and bias in the flat parameter buffer) and passes element offsets as uniform
 * words.
 * @module
 */
import { checkRef, checkSize, stridedExtent } from "./check.ts";
import { type Dispatch, grid2d, type KernelSequence, type Ref, type Tensor } from "./graph.ts";
import { loadWgsl } from "../../gpu/pipeline.ts";

/** One operand of a recorded kernel: template key `key` (e.g. `X` for `{{X}}`), its reference. */
export interface KernelOperand {
  /** Template placeholder naming the operand's buffer in the WGSL source. */
  key: string;
  /** The operand, or null when the kernel does not read it (an optional input). */
  ref: Ref | null;
  /** Elements the kernel touches from `ref.off` on. */
  extent: number;
  /** Name used in error messages (e.g. `"layernorm dy"`). */
  what: string;
}

/** Words of the uniform block every Group B training shader declares (8 × vec4<u32>). */
export const PARAM_WORDS = 32;

const srcKeys = new Map<string, Promise<string[]>>();

function placeholders(shader: string): Promise<string[]> {
  let p = srcKeys.get(shader);
  if (!p) {
    p = loadWgsl(shader).then((
      s,
    ) => [...new Set([...s.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]))]);
    srcKeys.set(shader, p);
  }
  return p;
}

/**
 * Record one dispatch of a Group B training shader: binds the distinct tensors of `operands`
 * (validated) as `b1, b2, …` (`read_write` f32 arrays declared through `{{BINDINGS}}`), maps every
 * operand key to its binding (unused keys of other entry points to `b1`), pads `params` to
 * {@link PARAM_WORDS} uniform words.
 * @throws {Error} on an operand out of range or too many parameter words.
 */
export async function recordTrainKernel(
  seq: KernelSequence,
  o: {
    shader: string;
    entry: string;
    label: string;
    operands: KernelOperand[];
    params: number[];
    workgroups: [number, number?, number?];
  },
): Promise<Dispatch> {
  const tensors: Tensor[] = [];
  const template: Record<string, string> = {};
  for (const op of o.operands) {
    if (!op.ref) continue;
    checkRef(op.what, op.ref, op.extent);
    let k = tensors.indexOf(op.ref.t);
    if (k < 0) k = tensors.push(op.ref.t) - 1;
    template[op.key] = `b${k + 1}`;
  }
  if (tensors.length === 0) throw new Error(`${o.label}: no operand tensors`);
  template.BINDINGS = tensors.map((_, k) =>
    `@group(0) @binding(${k + 1}) var<storage, read_write> b${k + 1}: array<f32>;`
  ).join("\n");
  for (const key of await placeholders(o.shader)) template[key] ??= "b1";
  if (o.params.length > PARAM_WORDS) {
    throw new Error(`${o.label}: ${o.params.length} parameter words, at most ${PARAM_WORDS}`);
  }
  const params = new Array<number>(PARAM_WORDS).fill(0);
  o.params.forEach((v, i) => params[i] = v >>> 0);
  return await seq.dispatch({
    shader: o.shader,
    entry: o.entry,
    template,
    params,
    bindings: tensors,
    workgroups: o.workgroups,
    label: o.label,
  });
}

/** Workgroup grid for `n` elements at 64 invocations per workgroup. */
export function elementGrid(n: number): [number, number, number] {
  return grid2d(Math.ceil(n / 64));
}

const SHADER = "train/pointwise.wgsl";

/** Element-wise activations (torch semantics; softplus with beta 1, threshold 20). */
export type PointwiseOp = "relu" | "silu" | "softplus" | "sigmoid";

const OPS: Record<PointwiseOp, number> = { relu: 0, silu: 1, softplus: 2, sigmoid: 3 };

function opCode(op: PointwiseOp): number {
  const c = OPS[op];
  if (c === undefined) {
    throw new Error(`pointwise: unknown op "${op}" (relu, silu, softplus, sigmoid)`);
  }
  return c;
}

/**
 * Record y = op(x) on a `(rows, cols)` 2-D strided block: element (r, c) of x is
 * `x.t[x.off + r·ldx + c]`, of y `y.t[y.off + r·ldy + c]` (f32). y may be x (in place).
 * Formulas: lib/ops/pointwise.ts (relu, silu, softplus, sigmoid).
 * @throws {Error} on an unknown op or an operand out of range.
 */
export async function recordPointwise(
  seq: KernelSequence,
  a: { op: PointwiseOp; x: Ref; ldx: number; y: Ref; ldy: number; rows: number; cols: number },
): Promise<void> {
  const op = opCode(a.op);
  checkSize("pointwise rows", a.rows);
  checkSize("pointwise cols", a.cols);
  await recordTrainKernel(seq, {
    shader: SHADER,
    entry: "pw_fwd",
    label: `pointwise ${a.op}`,
    operands: [
      {
        key: "X",
        ref: a.x,
        extent: stridedExtent(a.rows, a.cols, a.ldx, "pointwise x"),
        what: "pointwise x",
      },
      {
        key: "Y",
        ref: a.y,
        extent: stridedExtent(a.rows, a.cols, a.ldy, "pointwise y"),
        what: "pointwise y",
      },
    ],
    params: [a.rows, a.cols, op, a.x.off ?? 0, a.ldx, a.y.off ?? 0, a.ldy],
    workgroups: elementGrid(a.rows * a.cols),
  });
}

/**
 * Record the VJP dx (+)= dy · op′(x) on `(rows, cols)` strided blocks (layout as
 * {@link recordPointwise}). `x` is the forward INPUT, except for "sigmoid" where it is the forward
 * OUTPUT s (dx = dy·s(1 − s)). ReLU′(0) = 0 and softplus′ = 1 above 20 (torch).
 * @throws {Error} on an unknown op or an operand out of range.
 */
export async function recordPointwiseBackward(
  seq: KernelSequence,
  a: {
    op: PointwiseOp;
    x: Ref;
    ldx: number;
    dy: Ref;
    ldy: number;
    dx: Ref;
    lddx: number;
    rows: number;
    cols: number;
    accumulate?: boolean;
  },
): Promise<void> {
  const op = opCode(a.op);
  checkSize("pointwise backward rows", a.rows);
  checkSize("pointwise backward cols", a.cols);
  const ext = (ld: number, w: string) => stridedExtent(a.rows, a.cols, ld, w);
  await recordTrainKernel(seq, {
    shader: SHADER,
    entry: "pw_bwd",
    label: `pointwise ${a.op} backward`,
    operands: [
      {
        key: "X",
        ref: a.x,
        extent: ext(a.ldx, "pointwise backward x"),
        what: "pointwise backward x",
      },
      {
        key: "DY",
        ref: a.dy,
        extent: ext(a.ldy, "pointwise backward dy"),
        what: "pointwise backward dy",
      },
      {
        key: "DX",
        ref: a.dx,
        extent: ext(a.lddx, "pointwise backward dx"),
        what: "pointwise backward dx",
      },
    ],
    params: [
      a.rows,
      a.cols,
      op,
      a.x.off ?? 0,
      a.ldx,
      a.dy.off ?? 0,
      a.ldy,
      a.dx.off ?? 0,
      a.lddx,
      a.accumulate ? 1 : 0,
    ],
    workgroups: elementGrid(a.rows * a.cols),
  });
}

/**
 * Record the Mamba gate out = y · silu(z) (spec §6 "Mamba v1" step 6) on `(rows, cols)` strided
 * blocks (element (r, c) of y at `y.off + r·ldy + c`, likewise z, out).
 * @throws {Error} on an operand out of range.
 */
export async function recordGateForward(
  seq: KernelSequence,
  a: {
    y: Ref;
    ldy: number;
    z: Ref;
    ldz: number;
    out: Ref;
    ldo: number;
    rows: number;
    cols: number;
  },
): Promise<void> {
  checkSize("gate rows", a.rows);
  checkSize("gate cols", a.cols);
  const ext = (ld: number, w: string) => stridedExtent(a.rows, a.cols, ld, w);
  await recordTrainKernel(seq, {
    shader: SHADER,
    entry: "gate_fwd",
    label: "gate forward",
    operands: [
      { key: "Y", ref: a.y, extent: ext(a.ldy, "gate y"), what: "gate y" },
      { key: "Z", ref: a.z, extent: ext(a.ldz, "gate z"), what: "gate z" },
      { key: "OUT", ref: a.out, extent: ext(a.ldo, "gate out"), what: "gate out" },
    ],
    params: [a.rows, a.cols, a.y.off ?? 0, a.ldy, a.z.off ?? 0, a.ldz, a.out.off ?? 0, a.ldo],
    workgroups: elementGrid(a.rows * a.cols),
  });
}

/**
 * Record the VJP of {@link recordGateForward}: dy = dOut·silu(z), dz = dOut·y·silu′(z),
 * silu′(z) = s(1 + z(1 − s)), s = sigmoid(z). Both written (not accumulated).
 * @throws {Error} on an operand out of range.
 */
export async function recordGateBackward(
  seq: KernelSequence,
  a: {
    y: Ref;
    ldy: number;
    z: Ref;
    ldz: number;
    dOut: Ref;
    ldo: number;
    dy: Ref;
    lddy: number;
    dz: Ref;
    lddz: number;
    rows: number;
    cols: number;
  },
): Promise<void> {
  checkSize("gate backward rows", a.rows);
  checkSize("gate backward cols", a.cols);
  const ext = (ld: number, w: string) => stridedExtent(a.rows, a.cols, ld, w);
  await recordTrainKernel(seq, {
    shader: SHADER,
    entry: "gate_bwd",
    label: "gate backward",
    operands: [
      { key: "Y", ref: a.y, extent: ext(a.ldy, "gate backward y"), what: "gate backward y" },
      { key: "Z", ref: a.z, extent: ext(a.ldz, "gate backward z"), what: "gate backward z" },
      {
        key: "DOUT",
        ref: a.dOut,
        extent: ext(a.ldo, "gate backward dOut"),
        what: "gate backward dOut",
      },
      { key: "DY", ref: a.dy, extent: ext(a.lddy, "gate backward dy"), what: "gate backward dy" },
      { key: "DZ", ref: a.dz, extent: ext(a.lddz, "gate backward dz"), what: "gate backward dz" },
    ],
    params: [
      a.rows,
      a.cols,
      a.y.off ?? 0,
      a.ldy,
      a.z.off ?? 0,
      a.ldz,
      a.dOut.off ?? 0,
      a.ldo,
      a.dy.off ?? 0,
      a.lddy,
      a.dz.off ?? 0,
      a.lddz,
    ],
    workgroups: elementGrid(a.rows * a.cols),
  });
}

/**
 * Record out (+)= x ⊙ m over `n` contiguous elements (inverted dropout with mask m, spec §6 step 3;
 * the backward is the same call with dy in place of x).
 * @throws {Error} on an operand out of range.
 */
export async function recordMul(
  seq: KernelSequence,
  a: { x: Ref; m: Ref; out: Ref; n: number; accumulate?: boolean },
): Promise<void> {
  checkSize("mul n", a.n);
  await recordTrainKernel(seq, {
    shader: SHADER,
    entry: "mul",
    label: "mul",
    operands: [
      { key: "X", ref: a.x, extent: a.n, what: "mul x" },
      { key: "M", ref: a.m, extent: a.n, what: "mul m" },
      { key: "OUT", ref: a.out, extent: a.n, what: "mul out" },
    ],
    params: [a.n, a.x.off ?? 0, a.m.off ?? 0, a.out.off ?? 0, a.accumulate ? 1 : 0],
    workgroups: elementGrid(a.n),
  });
}
