/**
 * Generator of `wgsl/head/tokens.wgsl` (scan order + fused add/RMSNorm, final LayerNorm +
 * un-permute, spec §6 steps 2–4): the per-channel code is unrolled over the token width so every
 * channel quad stays in a register. TypeScript reference: lib/model/reference.ts
 * (lib/model/reference.ts headForward64, lib/ops/norm.ts).
 * @module
 */
import { fillTemplate } from "../gpu/pipeline.ts";

/** Balanced sum of expressions (shorter dependency chains, better rounding than a linear sum). */
function tree(terms: string[]): string {
  if (terms.length === 1) return terms[0];
  const h = Math.ceil(terms.length / 2);
  return `(${tree(terms.slice(0, h))} + ${tree(terms.slice(h))})`;
}

/** Fill the template for `C4` channel quads (token width 4·C4). */
export function tokensSource(template: string, C4: number): string {
  const cs = Array.from({ length: C4 }, (_, c) => c);
  const n = 4 * C4;
  let init = "", add = "", sum = "";
  for (const c of cs) {
    init += `  let x${c} = textureLoad(E, vec2<i32>(i32(P.eOff4 + ${c}u), p), i32(b), 0);\n`;
    init += `  streamOut[o + ${c}u] = x${c};\n`;
    add +=
      `  let x${c} = textureLoad(sT, vec2<i32>(${c}, y), l, 0) + textureLoad(hT, vec2<i32>(${c}, y), l, 0);\n`;
    add += `  streamOut[o + ${c}u] = x${c};\n`;
    sum +=
      `  let x${c} = textureLoad(sT, vec2<i32>(${c}, y), l, 0) + textureLoad(hT, vec2<i32>(${c}, y), l, 0);\n`;
  }
  let rms = `  let ss4 = ${tree(cs.map((c) => `x${c} * x${c}`))};\n`;
  rms += `  let rs = inverseSqrt((ss4.x + ss4.y + ss4.z + ss4.w) / ${n}.0 + EPS);\n`;
  for (const c of cs) rms += `  outB[o + ${c}u] = x${c} * rs * wA[${c}];\n`;
  sum += `  let sm = ${tree(cs.map((c) => `x${c}`))};\n`;
  sum += `  let mean = (sm.x + sm.y + sm.z + sm.w) / ${n}.0;\n`;
  for (const c of cs) sum += `  let d${c} = x${c} - mean;\n`;
  sum += `  let vs = ${tree(cs.map((c) => `d${c} * d${c}`))};\n`;
  sum += `  let rs = inverseSqrt((vs.x + vs.y + vs.z + vs.w) / ${n}.0 + EPS);\n`;
  let ln = "";
  for (const c of cs) ln += `  outB[o + ${c}u] = d${c} * rs * wA[${c}] + wB[${c}];\n`;
  return fillTemplate(template, {
    C4,
    INIT_LOAD: init,
    ADD_LOAD: add,
    SUM_LOAD: sum,
    RMS_STORE: rms,
    LN_STORE: ln,
  });
}
