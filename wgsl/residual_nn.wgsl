// Intra-residual nearest-reference search (spec §5 "Intra-residual"), one image per dispatch.
//
// For every query position p of image P.b: the running smallest and second-smallest squared L2
// distance Σ_c (f[ref, c] − f[p, c])² (direct differences, f32) over the K references, and the
// position of the smallest, merged into STATE over a sequence of dispatches (one per group of
// W reference windows). A reference never matches itself; references come in ascending position
// order and the update uses a strict `<`, so f32 ties go to the lower position. The host
// rechecks near-ties (second − first below a relative tolerance) exactly in float64.
//
// Register blocking for lavapipe (docs/webgpu-on-lavapipe.md): an invocation owns TQ queries
// p = gid.x + k·P.qStride and walks the references TR at a time, keeping TQ·TR accumulators; per
// vec4 of channels it loads TQ query vec4 from the rgba32float texture QT (per-lane texel loads)
// and TR reference vec4 from a uniform-buffer window (the same address on all lanes). No private
// array is indexed dynamically (lavapipe lowers those to branch ladders).
// Loop back-edges per 8-lane group and dispatch: W·(NR/TR)·(C4 + 1) (host keeps it < 65535).
//
// Template filled by lib/residual/nn_kernel.ts: C4 (vec4s per vector), S4 (window row stride),
// NR (references per window), TR, QR (queries per texture row), WG, and the unrolled blocks.
// This instance: W = {{W}} windows, TQ = {{TQ}}, TR = {{TR}}.

struct Params {
  L: u32,       // positions per image
  b: u32,       // image index within the chunk
  qStride: u32, // invocations per dispatch (query stride)
  refBase: u32, // first reference slot of this dispatch
  Kpad: u32,    // reference slots per image (K padded; padding slots hold NONE)
  pad0: u32,
  pad1: u32,
  pad2: u32,
}

const C4: u32 = {{C4}}u;
const S4: u32 = {{S4}}u;
const NR: u32 = {{NR}}u;
const TR: u32 = {{TR}}u;
const QR: u32 = {{QR}}u;
const NONE: u32 = 0xffffffffu;

// QT texel (x, y) holds f[4c .. 4c+3] of query g = b·L + p with x = (g % QR)·C4 + c, y = g / QR
// (zero-padded channels).
@group(0) @binding(0) var QT: texture_2d<f32>;
@group(0) @binding(1) var<storage, read> REFPOS: array<u32>;            // (B, Kpad) ascending, NONE-padded
@group(0) @binding(2) var<storage, read_write> STATE: array<vec4<u32>>; // (B, L): d1, i1, d2 (f32 bits)
@group(0) @binding(3) var<uniform> P: Params;
{{WINDOW_BINDINGS}}

fn sq4(e: vec4<f32>) -> f32 {
  return (e.x * e.x + e.y * e.y) + (e.z * e.z + e.w * e.w);
}

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let INF = bitcast<f32>(0x7f800000u);
  let rbase = P.b * P.Kpad + P.refBase;
{{QUERY_SETUP}}
{{WINDOWS}}
{{STORE}}
}
