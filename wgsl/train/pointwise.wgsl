// Element-wise training kernels of the SNARM head (spec §6): activations relu / silu / softplus /
// sigmoid with their VJPs on 2-D strided operands, the Mamba gate out = y·silu(z) (§6 "Mamba v1"
// step 6) with its VJP, and the plain product out (+)= x·m (inverted-dropout mask, §6 step 3).
// TypeScript references: lib/ops/pointwise.ts. Host side: lib/train/gpu/pointwise.ts.
//
// Bindings: the host's BINDINGS template declares b1.. (deduplicated tensors, all f32); operands
// are addressed by element offsets in the uniform words P (read once at entry, outside loops). One invocation per
// element, 64 per workgroup, 2-D workgroup grid (grid2d).

struct Params {
  u: array<vec4<u32>, 8>,
}

@group(0) @binding(0) var<uniform> P: Params;
{{BINDINGS}}

fn U(i: u32) -> u32 {
  return P.u[i >> 2u][i & 3u];
}

// #include "common/math.wgsl"

// op: 0 relu, 1 silu, 2 softplus, 3 sigmoid.
fn act(op: u32, x: f32) -> f32 {
  switch op {
    case 0u: {
      return max(x, 0.0);
    }
    case 1u: {
      return silu(x);
    }
    case 2u: {
      return softplus(x);
    }
    default: {
      return sigmoid(x);
    }
  }
}

// Derivative of act at the forward input x (for sigmoid: x is the forward OUTPUT s, s(1 − s)).
fn actGrad(op: u32, x: f32) -> f32 {
  switch op {
    case 0u: {
      return select(0.0, 1.0, x > 0.0);
    }
    case 1u: {
      let s = sigmoid(x);
      return s * (1.0 + x * (1.0 - s));
    }
    case 2u: {
      return select(sigmoid(x), 1.0, x > 20.0);
    }
    default: {
      return x * (1.0 - x);
    }
  }
}

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * 64u + lid;
}

// y[r, c] = act(x[r, c]).  P: rows, cols, op, xOff, ldx, yOff, ldy
@compute @workgroup_size(64)
fn pw_fwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows = U(0u);
  let cols = U(1u);
  let op = U(2u);
  let xOff = U(3u);
  let ldx = U(4u);
  let yOff = U(5u);
  let ldy = U(6u);
  let i = flat(wid, nwg, lid);
  if (i >= rows * cols) {
    return;
  }
  let r = i / cols;
  let c = i - r * cols;
  {{Y}}[yOff + r * ldy + c] = act(op, {{X}}[xOff + r * ldx + c]);
}

// dx[r, c] (+)= dy[r, c] · act'(x[r, c]).  P: rows, cols, op, xOff, ldx, dyOff, ldy, dxOff, lddx, acc
@compute @workgroup_size(64)
fn pw_bwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows = U(0u);
  let cols = U(1u);
  let op = U(2u);
  let xOff = U(3u);
  let ldx = U(4u);
  let dyOff = U(5u);
  let ldy = U(6u);
  let dxOff = U(7u);
  let lddx = U(8u);
  let acc = U(9u);
  let i = flat(wid, nwg, lid);
  if (i >= rows * cols) {
    return;
  }
  let r = i / cols;
  let c = i - r * cols;
  var g = {{DY}}[dyOff + r * ldy + c] * actGrad(op, {{X}}[xOff + r * ldx + c]);
  let o = dxOff + r * lddx + c;
  if (acc != 0u) {
    g += {{DX}}[o];
  }
  {{DX}}[o] = g;
}

// out = y · silu(z).  P: rows, cols, yOff, ldy, zOff, ldz, oOff, ldo
@compute @workgroup_size(64)
fn gate_fwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows = U(0u);
  let cols = U(1u);
  let yOff = U(2u);
  let ldy = U(3u);
  let zOff = U(4u);
  let ldz = U(5u);
  let oOff = U(6u);
  let ldo = U(7u);
  let i = flat(wid, nwg, lid);
  if (i >= rows * cols) {
    return;
  }
  let r = i / cols;
  let c = i - r * cols;
  let z = {{Z}}[zOff + r * ldz + c];
  {{OUT}}[oOff + r * ldo + c] = {{Y}}[yOff + r * ldy + c] * silu(z);
}

// dy = dOut · silu(z); dz = dOut · y · silu'(z).
// P: rows, cols, yOff, ldy, zOff, ldz, oOff (dOut), ldo, dyOff, lddy, dzOff, lddz
@compute @workgroup_size(64)
fn gate_bwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows = U(0u);
  let cols = U(1u);
  let yOff = U(2u);
  let ldy = U(3u);
  let zOff = U(4u);
  let ldz = U(5u);
  let oOff = U(6u);
  let ldo = U(7u);
  let dyOff = U(8u);
  let lddy = U(9u);
  let dzOff = U(10u);
  let lddz = U(11u);
  let i = flat(wid, nwg, lid);
  if (i >= rows * cols) {
    return;
  }
  let r = i / cols;
  let c = i - r * cols;
  let z = {{Z}}[zOff + r * ldz + c];
  let y = {{Y}}[yOff + r * ldy + c];
  let g = {{DOUT}}[oOff + r * ldo + c];
  let s = sigmoid(z);
  {{DY}}[dyOff + r * lddy + c] = g * z * s;
  {{DZ}}[dzOff + r * lddz + c] = g * y * s * (1.0 + z * (1.0 - s));
}

// out[i] (+)= x[i] · m[i], i < n.  P: n, xOff, mOff, oOff, acc
@compute @workgroup_size(64)
fn mul(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let n = U(0u);
  let xOff = U(1u);
  let mOff = U(2u);
  let oOff = U(3u);
  let acc = U(4u);
  let i = flat(wid, nwg, lid);
  if (i >= n) {
    return;
  }
  var v = {{X}}[xOff + i] * {{M}}[mOff + i];
  if (acc != 0u) {
    v += {{OUT}}[oOff + i];
  }
  {{OUT}}[oOff + i] = v;
}
