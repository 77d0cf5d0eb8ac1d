// Exact L2 top-K bank search, tiled design for real GPUs (lane-contiguous loads, shared-memory
// bank tiles read as broadcasts, register-blocked accumulators, bank split into segments).
//
// Grid: x = query block (WG*QPT queries), y = bank segment of P.seg_rows rows inside the bound
// bank chunk. Each invocation owns QPT queries (q = block*WG*QPT + i*WG + li, so loads from the
// dimension-major query matrix are contiguous across lanes) and keeps their top-K of its segment.
// Per tile of TB bank rows the workgroup stages DC dimensions at a time in shared memory; every
// invocation reads them at the same address (broadcast). Ranking value: dv = |b|^2 - 2 q.b.
// Rows are visited in increasing index order with strict `<`, so ties keep the lower index; the
// partial top-K lists are merged per query in segment order by bank/knn_merge.wgsl.
// Loop counts per invocation stay below lavapipe's 65535 back-edge limit: the tile and dimension
// loops are the only loops (the inner blocks are unrolled by the generator), and the host picks
// P.seg_rows so that tiles * (D/DC + 1) stays far below it.
//
// Template values (filled by lib/bank/search.ts): WG, QPT, TB, DC, DP (padded D), K, SDEF
// (shared array type and size: vec4<f32>, TB*DC/4), ACC_DECL, STAGE, MACS, INSERT, STATE_INIT, STATE_STORES.
//
// P.rows = rows of the bound chunk (a multiple of TB); P.inf = +infinity (initial top-K value).
//
// Layouts:
//   QT  (DP, Qp) dimension-major queries: QT[d*Qp + q].
//   BK  row-major (rows, DP) window of the bank: chunk rows P.chunk_row0 ...
//   BN  |b|^2 of every padded bank row (+inf for padding and excluded rows), global row index.
//   PD/PI partial top-K: ((P.seg_out0 + seg) * Qp + q) * K + r.

struct Params {
  qp: u32,
  chunk_row0: u32,
  seg_rows: u32,
  seg_out0: u32,
  rows: u32,
  inf: f32,
  pad0: u32,
  pad1: u32,
}

@group(0) @binding(0) var<storage, read> QT: array<f32>;
@group(0) @binding(1) var<storage, read> BK: array<f32>;
@group(0) @binding(2) var<storage, read> BN: array<f32>;
@group(0) @binding(3) var<storage, read_write> PD: array<f32>;
@group(0) @binding(4) var<storage, read_write> PI: array<u32>;
@group(0) @binding(5) var<uniform> P: Params;

var<workgroup> S: array<{{SDEF}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let qp = P.qp;
  let qb = wid.x * {{WG}}u * {{QPT}}u + li;
  let seg = wid.y;
  let row_start = seg * P.seg_rows;
{{STATE_INIT}}
  let tiles = min(P.seg_rows, P.rows - row_start) / {{TB}}u;
  for (var tile = 0u; tile < tiles; tile++) {
    let r0 = row_start + tile * {{TB}}u;
{{ACC_DECL}}
    for (var dc = 0u; dc < {{DP}}u / {{DC}}u; dc++) {
      let d0 = dc * {{DC}}u;
{{STAGE}}
      workgroupBarrier();
{{MACS}}
      workgroupBarrier();
    }
{{INSERT}}
  }
{{STATE_STORES}}
}
