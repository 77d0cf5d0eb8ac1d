// Greedy k-centre coreset (PatchCore ApproximateGreedyCoresetSampler), step 1 of 2 per iteration:
// update every point's min squared distance to the coreset with the newest centre, then emit each
// invocation's (max, argmax) partial for bank/coreset_argmax.wgsl. Spec: snarm-method.md §2.
//
// Layout: the projected points (N, DP) are fixed-point i16 codes (coreset.ts
// quantizeCoresetPoints) in an rgba32uint texture, 8 dims per texel (u32 k of a texel packs dims 2k
// (low half) and 2k+1), DP8 = DP/8 texels per point, PPR points per texture row: point p, dims
// 8j..8j+7 = texel (x = (p % PPR)·DP8 + j, y = p / PPR). Per-lane texture loads are the cheapest
// per-lane reads on lavapipe; 16-bit packing halves their number (1.25× faster than rgba32float
// in a paired measurement), and a texture has no 128 MiB storage-binding limit.
//
// Distances are exact integers: Σ (x − c)² over i32, which cannot overflow because |code| ≤
// sqrt((2³¹ − 1)/DP)/2. Integer sums do not depend on evaluation order, so the result is identical
// to the TypeScript reference on every implementation (f32 sums were not: lavapipe's NIR reorders
// float additions). Anchors are i32; −1 marks a selected point.
//
// Template values (filled by coreset.ts): WG workgroup size, PPI points per invocation (the loop
// count per dispatch, far below lavapipe's 65535 back-edge limit), PPR, DP8, CENTRE (unrolled
// centre loads c0, c1, ...) and DIST (unrolled distance code).

struct Params {
  n: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

// t: iterations done; cur: newest centre (0xffffffff before the first selection).
struct State {
  t: u32,
  cur: u32,
  _s0: u32,
  _s1: u32,
}

@group(0) @binding(0) var pts: texture_2d<u32>;
@group(0) @binding(1) var<storage, read_write> mind: array<i32>;
@group(0) @binding(2) var<storage, read> state: State;
@group(0) @binding(3) var<storage, read_write> part_v: array<i32>;
@group(0) @binding(4) var<storage, read_write> part_i: array<u32>;
@group(0) @binding(5) var<uniform> params: Params;

const PPR: u32 = {{PPR}}u;
const DP8: u32 = {{DP8}}u;
const WG: u32 = {{WG}}u;
const PPI: u32 = {{PPI}}u;

@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let cur = state.cur;
  let has = cur != 0xffffffffu;
  let cc = select(0u, cur, has);
  let cy = i32(cc / PPR);
  let cx = i32((cc % PPR) * DP8);
{{CENTRE}}
  var bv = -1;
  var bi = 0xffffffffu;
  let base = wid.x * (PPI * WG) + li;
  for (var k = 0u; k < PPI; k++) {
    let p = base + k * WG;
    let inb = p < params.n;
    let q = select(0u, p, inb);
    let y = i32(q / PPR);
    let x = i32((q % PPR) * DP8);
    var a0 = vec4<i32>(0);
    var a1 = vec4<i32>(0);
{{DIST}}
    let s = a0 + a1;
    let dist = s.x + s.y + s.z + s.w;
    let old = mind[q];
    var m = select(old, min(old, dist), has);
    // A selected point is marked −1 so it is never selected again (ties among covered points).
    m = select(m, -1, has && q == cur);
    if (inb) {
      mind[q] = m;
    }
    // Points are visited in increasing index order: strict > keeps the lowest index on ties.
    let better = inb && m > bv;
    bv = select(bv, m, better);
    bi = select(bi, p, better);
  }
  let gi = wid.x * WG + li;
  part_v[gi] = bv;
  part_i[gi] = bi;
}

// Sign-extend the two i16 halves of each u32 of a texel into dims 0..3 and 4..7.
fn lo4(u: vec4<u32>) -> vec4<i32> {
  let v = bitcast<vec4<i32>>(u);
  return vec4<i32>((v.x << 16u) >> 16u, v.x >> 16u, (v.y << 16u) >> 16u, v.y >> 16u);
}

fn hi4(u: vec4<u32>) -> vec4<i32> {
  let v = bitcast<vec4<i32>>(u);
  return vec4<i32>((v.z << 16u) >> 16u, v.z >> 16u, (v.w << 16u) >> 16u, v.w >> 16u);
}
