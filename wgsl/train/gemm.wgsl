// Training GEMM (lib/train/gpu/gemm.ts): O(i, j) (+)= Σ_k L(i, k) · S(k, j) over ONE K window of
// KW per workgroup, for QPI lane rows i per invocation and a tile of JW columns j per
// workgroup. Every operand is addressed by an element offset and two element strides, so one
// kernel serves C = opA·opB (lanes over m) and Cᵀ = opBᵀ·opAᵀ (lanes over n), any transA/transB.
// TypeScript reference: gemmRef in lib/train/gpu/gemm.ts.
//
// Design for lavapipe (docs/webgpu-on-lavapipe.md, "design E"): the workgroup copies the S tile
// (KW × JW) into workgroup memory once; each lane loads its QPI·KW values of L into registers;
// the MAC body is generated fully unrolled and loop-free, so every S read is a workgroup load at
// a literal offset (one broadcast serves all 8 lanes). The only loop is the cooperative copy
// (KW·JW/WG iterations, far below the 65535 loop limit). K windows are separate dispatches (and
// separate workgroup slots wid.z when K is split): window base kb = P.kb + wid.z·KW.
//
// `main`:  L(i,k) = Lb[Loff + i·Lsi + k·Lsk] · alpha, S(k,j) = Sb[Soff + k·Ssk + j·Ssj],
//          O(i,j) at Ob[Ooff + wid.z·Ozs + i·Osi + j·Osj]; flags bit 0: add the previous O,
//          bit 1: add bias Bb[boff + i·bsi + j·bsj].
// `reduce`: O(i,j) = (flag 0: O(i,j)) + Σ_{p < nP} Lb[p·Ozs + i·J + j] (+ bias, flag 1): the sum of
//          the split-K partials (Lb = partials, binding 3 = C).

struct Params {
  I: u32,
  J: u32,
  K: u32,
  kb: u32,
  Loff: u32,
  Lsi: u32,
  Lsk: u32,
  Soff: u32,
  Ssk: u32,
  Ssj: u32,
  Ooff: u32,
  Osi: u32,
  Osj: u32,
  Ozs: u32,
  flags: u32,
  boff: u32,
  bsi: u32,
  bsj: u32,
  alpha: f32,
  nP: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Lb: array<f32>;
@group(0) @binding(2) var<storage, read> Bb: array<f32>;
@group(0) @binding(3) var<storage, read_write> Ob: array<f32>;
{{MAIN}}

@compute @workgroup_size(64)
fn reduce(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nw: vec3<u32>) {
  let e = (wid.x + wid.y * nw.x) * 64u + li;
  if (e >= P.I * P.J) {
    return;
  }
  let i = e / P.J;
  let j = e % P.J;
  var s = 0.0;
  for (var p = 0u; p < P.nP; p++) {
    s += Lb[p * P.Ozs + e];
  }
  let o = P.Ooff + i * P.Osi + j * P.Osj;
  if ((P.flags & 1u) != 0u) {
    s += Ob[o];
  }
  if ((P.flags & 2u) != 0u) {
    s += Bb[P.boff + i * P.bsi + j * P.bsj];
  }
  Ob[o] = s;
}
