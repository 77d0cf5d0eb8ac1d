/**
 * `out = x · m + y` over flat tensors (`wgsl/train/axpy.wgsl`): the branch's
 * LayerNorm input dropout(h) + stream (spec §6 step 3), m = inverted-dropout multipliers (or none).
 * @module
 */
import { grid2d, type KernelSequence, type Ref, type Tensor } from "./graph.ts";

/** Arguments of {@link recordAxpy}: `n` elements from each operand's offset. */
export interface AxpyArgs {
  x: Ref;
  /** Multipliers (null = 1). */
  m: Ref | null;
  y: Ref;
  out: Ref;
  n: number;
}

function need(r: Ref, n: number, what: string): void {
  const off = r.off ?? 0;
  if (!Number.isInteger(off) || off < 0 || off + n > r.t.length) {
    throw new Error(
      `axpy: ${what} (${r.t.label}) needs ${n} values from ${off}, has ${r.t.length}`,
    );
  }
}

/** Record `out[i] = x[i]·m[i] + y[i]` for i < n. `out` must not be x, m or y's tensor. */
export async function recordAxpy(seq: KernelSequence, a: AxpyArgs): Promise<void> {
  need(a.x, a.n, "x");
  need(a.y, a.n, "y");
  need(a.out, a.n, "out");
  if (a.m) need(a.m, a.n, "m");
  const [gx, gy] = grid2d(Math.ceil(a.n / 256));
  const mT: Tensor = a.m ? a.m.t : a.x.t;
  await seq.dispatch({
    shader: "train/axpy.wgsl",
    label: "axpy",
    params: [a.n, a.x.off ?? 0, a.m?.off ?? 0, a.y.off ?? 0, a.out.off ?? 0, a.m ? 1 : 0, gx, 0],
    bindings: [a.x.t, mT, a.y.t, a.out.t],
    workgroups: [gx, gy],
  });
}

/** TypeScript reference of {@link recordAxpy}. */
export function axpyRef(
  x: ArrayLike<number>,
  m: ArrayLike<number> | null,
  y: ArrayLike<number>,
): Float64Array {
  const o = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) o[i] = x[i] * (m ? m[i] : 1) + y[i];
  return o;
}
