// Exact L2 top-K bank search, "straight-line broadcast" design (design E of
// shared/docs/webgpu-on-lavapipe.md), tuned for CPU adapters (Mesa lavapipe).
//
// One dispatch handles W windows of NB bank rows each, for every query. Lane = query: invocation
// `inv` owns queries inv*QPI .. inv*QPI+QPI-1, loaded once per dispatch from the query texture and
// held as `let` values. Each window is copied into workgroup memory S, then a fully unrolled,
// loop-free and if-free block reads S at literal offsets (one vbroadcastss per bank scalar on
// lavapipe) and accumulates q.b for the QPI queries (a vec4 of partial sums per query: 4*QPI
// independent add chains). The ranking value is the GEMM form dv = |b|^2 - 2 q.b (|q|^2 is
// constant per query); padding rows and excluded rows carry |b|^2 = +inf and never enter the
// top-K. Bank rows are inserted in increasing index order with strict `<` (branch-free selects),
// so ties keep the lower bank index. The running top-K (TD distances, TI indices) is carried
// across dispatches in storage buffers. No loops: lavapipe's 65535 loop back-edge limit cannot
// truncate this kernel.
//
// Template values (filled by lib/bank/search.ts, which generates the unrolled code): WG, QPI,
// NBD4 (= NB*D/4 vec4 per window), NBW4 (= W*NB/4), BANK_BINDINGS, QUERY_LOADS, STATE_LOADS,
// WINDOWS, STATE_STORES.
//
// Layouts:
//   qtex   rgba32float texture, size (D/4, Qp): texel (x, y) = query y, dims 4x..4x+3.
//   TD/TI  (Qp, K) row-major running top-K (ascending), initialised to +inf / 0xffffffff.
//   B<w>   uniform window of the row-major (Np, D) bank: rows base+w*NB .. base+w*NB+NB-1.
//   R      per-dispatch record: base row index in R.base.x, |b|^2 of the W*NB rows in R.bn.

@group(0) @binding(0) var qtex: texture_2d<f32>;
@group(0) @binding(1) var<storage, read_write> TD: array<f32>;
@group(0) @binding(2) var<storage, read_write> TI: array<u32>;

{{BANK_BINDINGS}}

struct Rec {
  base: vec4<u32>,
  bn: array<vec4<f32>, {{NBW4}}>,
}
@group(2) @binding(0) var<uniform> R: Rec;

var<workgroup> S: array<vec4<f32>, {{NBD4}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let q0 = (wid.x * {{WG}}u + li) * {{QPI}}u;
  let base = R.base.x;
{{QUERY_LOADS}}
{{STATE_LOADS}}
{{WINDOWS}}
{{STATE_STORES}}
}
