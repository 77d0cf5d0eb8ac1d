// GEMM of the SNARM head: out[m, n] = Σ_k A[m, k] · W[n, k] over one K window of {{KW4}}·4
// channels, for {{QPI}} rows per invocation and a window of {{NW}} outputs per workgroup.
// TypeScript reference: lib/model/reference.ts linearRef (and conv3x3Ref through Winograd).
//
// Design for lavapipe (docs/webgpu-on-lavapipe.md, "design E"): the workgroup copies the weight
// window W[n0 .. n0+NW, k-window] into workgroup memory once; the per-lane rows of A are read
// from an rgba32float texture at entry; the MAC body is generated fully unrolled and loop-free,
// so every weight read is a workgroup load at a literal offset (one broadcast per vec4 serves
// all lanes and rows). The only loop is the cooperative copy (NW·KW4/WG iterations). Outputs go
// to a buffer (buffer stores cost half a texture store on lavapipe); the caller copies it into a
// texture when the next kernel reads it.
//
// A: texture (K4, RPL, layers); row m of batch z is texel row (m % RPL) of layer
//    aLayer0 + z·aLayersPerBatch + m / RPL, its channels 4x..4x+3 at texel x.
// W: texture (K4, N, batches): texel (k4, n, z) = W_z[n, 4k4 .. 4k4+3].
// Output: outB[row·ldo + colOff + n], row = rowBase + z·oBatchRows + m, or idx[m] (flag 8);
//    += previous value (flag 2: later K windows), + bias[biasOff + n] (flag 4); written as vec4
//    (ldo, colOff, biasOff multiples of 4; columns up to N rounded up to 4 are written).

struct Params {
  M: u32,
  N: u32,
  K4: u32,
  RPL: u32,
  kw4: u32,
  aLayer0: u32,
  aLayersPerBatch: u32,
  _unused: u32,
  flags: u32,
  ldo: u32,
  colOff: u32,
  rowBase: u32,
  oBatchRows: u32,
  biasOff: u32,
  _p0: u32,
  _p1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var A: texture_2d_array<f32>;
@group(0) @binding(2) var W: texture_2d_array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> idx: array<u32>;
@group(0) @binding(5) var<storage, read_write> outB: array<vec4<f32>>;

var<workgroup> S: array<vec4<f32>, {{SW}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let n0 = wid.y * {{NW}}u;
  let z = wid.z;
  for (var i = li; i < {{SW}}u; i += {{WG}}u) {
    let nl = i / {{KW4}}u;
    let k4 = P.kw4 + i % {{KW4}}u;
    let ok = n0 + nl < P.N && k4 < P.K4;
    let v = textureLoad(W, vec2<i32>(i32(min(k4, P.K4 - 1u)), i32(min(n0 + nl, P.N - 1u))), i32(z), 0);
    S[i] = select(vec4<f32>(0.0), v, ok);
  }
  workgroupBarrier();
  let mb = (wid.x * {{WG}}u + li) * {{QPI}}u;
  let kmax = i32(P.K4) - 1;
  let kb = i32(P.kw4);
{{ALOAD}}
{{BODY}}
  let nLim = min({{NW}}u, P.N - min(P.N, n0));
{{BUFOUT}}
}
