/**
 * Native CPU variant of the exact L2 top-k bank search (lib/bank/search.ts): ONNX Runtime's CPU
 * engine (`npm:onnxruntime-node@1.30.0`, loaded lazily by lib/backbone/session.ts) runs a 2-node
 * graph per (query block, bank chunk):
 *
 *   v = Gemm(q, B_c, n_c; alpha = −2, beta = 1, transB = 1)   (Q, N_c) = |b|² − 2 q·b
 *   (vals, idx) = TopK(v, K; axis = 1, largest = 0)            (Q, K), K = k + m candidates
 *
 * The bank is split once per index into chunks of ≈ `chunkRows` rows (ORT tensors over the host
 * copy, created once); the session is shared by all indices of a feature size D (dynamic Q, N_c,
 * K). The chunks' candidates are merged on the host and re-ranked exactly: f64 direct differences
 * Σ(q − b)², computed exactly as {@link searchTopKRef} does, sorted by (distance, index).
 *
 * Exactness (the result is IDENTICAL to {@link searchTopKRef}): for every value the kernel returns,
 * |v_j − (|b_j|² − 2 q·b_j)| ≤ E_j = g·(n_j + 2|q||b_j|) + (D + 2)·2⁻¹²⁵, g = 1.25·(γ_{D+2} + 2u),
 * u = 2⁻²⁴ (any summation order of the D + 1 terms, FMA or not; plus the f32 rounding of the stored
 * norm; the absolute term covers underflow: subnormal rounding or flush to zero of each term).
 * Per query and chunk c, TopK returned the K smallest v, so every row of c that is not a candidate
 * has v ≥ τ_c (the K-th value; +∞ when the chunk returned all its rows), hence a true squared
 * distance ≥ |q|² + τ_c − E_c with E_c the bound at the chunk's largest row norm. After the exact
 * re-rank, the query is accepted when the k-th exact distance s_k (plus a 1e-9 relative slack
 * for the f64 rounding of both sides) is below min_c(|q|² + τ_c − E_c): then no non-candidate can
 * enter the top-k, and the candidates are ordered by the very f64 values the reference compares.
 * Queries that fail (near ties at the k-th place, many exact duplicates) are searched again with
 * 8× more candidates per chunk (2 rounds), then by the TypeScript reference.
 * The allowed-entry mask sets the disallowed rows' norms to +∞ in a per-call norms tensor (their
 * v = +∞ sort last) and drops them from the candidates.
 * @module
 */
import { loadOrtNative } from "../backbone/session.ts";
import { GraphBuilder } from "../util/onnx_build.ts";
import type { BankIndexImpl } from "./bank_index.ts";
import { INF } from "./search_common.ts";
import { searchTopKRef, type TopK } from "./search_ref.ts";

type OrtNative = Exclude<Awaited<ReturnType<typeof loadOrtNative>>, Error>;
type Session = Awaited<ReturnType<OrtNative["InferenceSession"]["create"]>>;
type Tensor = InstanceType<OrtNative["Tensor"]>;

/** Tuning of the native search (defaults suit a few-core CPU; bench/tests override them). */
export interface NativeSearchOptions {
  /** Target bank rows per chunk (default 16384; chunks are balanced, each ≤ this). */
  chunkRows?: number;
  /**
   * Queries per ORT run (default: 2²⁰ / chunk rows for D ≤ 256, 2²³ / chunk rows above, at least
   * 64: a 4 or 32 MiB score block).
   */
  queryRows?: number;
  /** Extra candidates per chunk beyond k for the exact re-rank (default 6). */
  extra?: number;
  /** Intra-op threads (default `navigator.hardwareConcurrency`). */
  threads?: number;
}

/** Default bank rows per chunk. */
export const NATIVE_CHUNK_ROWS = 16384;
/** Default extra candidates per chunk. */
export const NATIVE_EXTRA = 6;

/** Whether onnxruntime-node (CPU) loads here, i.e. whether the `"native"` variant can run. */
export async function nativeSearchAvailable(): Promise<boolean> {
  return !((await loadOrtNative()) instanceof Error);
}

/** onnxruntime-node, or an Error naming why the `"native"` variant cannot run. */
export async function requireNative(): Promise<OrtNative> {
  const ort = await loadOrtNative();
  if (ort instanceof Error) {
    throw new Error(`bank search: variant "native" unavailable: onnxruntime-node: ${ort.message}`);
  }
  return ort;
}

/** ModelProto bytes of the Gemm + TopK graph for feature size `d` (dynamic Q, N_c, K). */
export function nativeKnnModel(d: number): Uint8Array {
  const g = new GraphBuilder("snarm_knn");
  const q = g.input("q", "float", ["Q", d]);
  const b = g.input("b", "float", ["N", d]);
  const n = g.input("n", "float", ["N"]);
  const k = g.input("k", "int64", [1]);
  const v = g.op1("Gemm", [q, b, n], { alpha: { f: -2 }, beta: { f: 1 }, transB: { i: 1 } });
  const [vals, idx] = g.op(
    "TopK",
    [v, k],
    {
      axis: { i: 1 },
      largest: { i: 0 },
      sorted: { i: 1 },
    },
    undefined,
    2,
  );
  g.output(vals, "vals", "float", ["Q", "K"]);
  g.output(idx, "idx", "int64", ["Q", "K"]);
  return g.encode();
}

const sessions = new Map<string, Promise<Session>>();

function getSession(ort: OrtNative, d: number, threads: number): Promise<Session> {
  const key = `${d}:${threads}`;
  let s = sessions.get(key);
  if (!s) {
    s = ort.InferenceSession.create(nativeKnnModel(d), {
      executionProviders: ["cpu"],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: "sequential",
      extra: { session: { force_spinning_stop: "1" } },
    });
    sessions.set(key, s);
    s.catch(() => sessions.delete(key));
  }
  return s;
}

interface Chunk {
  start: number;
  rows: number;
  bank: Tensor;
  norms: Tensor;
  /** Largest stored norm n_j and largest |b_j| (rounded up) of the chunk. */
  nmax: number;
  bmax: number;
}

interface NativeState {
  ort: OrtNative;
  session: Session;
  chunks: Chunk[];
  /** |b_j| (f64 √ of the stored f32 norm, rounded up by 1e-6 relative to cover that rounding). */
  rowNorm: Float64Array;
  nmax: number;
  bmax: number;
}

const states = new WeakMap<BankIndexImpl, Map<string, Promise<NativeState>>>();

function resolved(o: NativeSearchOptions) {
  const threads = o.threads ?? Math.max(1, navigator.hardwareConcurrency || 1);
  const chunkRows = o.chunkRows ?? NATIVE_CHUNK_ROWS;
  const extra = o.extra ?? NATIVE_EXTRA;
  if (!Number.isInteger(chunkRows) || chunkRows < 1) {
    throw new Error(`bank search: native chunkRows=${chunkRows} must be a positive integer`);
  }
  if (!Number.isInteger(extra) || extra < 0) {
    throw new Error(`bank search: native extra=${extra} must be a non-negative integer`);
  }
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`bank search: native threads=${threads} must be a positive integer`);
  }
  return { threads, chunkRows, extra };
}

/** The session and the bank chunk tensors of `index` (created once per index and chunk size). */
function nativeState(index: BankIndexImpl, o: NativeSearchOptions): Promise<NativeState> {
  const { threads, chunkRows } = resolved(o);
  let m = states.get(index);
  if (!m) states.set(index, m = new Map());
  const key = `${chunkRows}:${threads}`;
  let p = m.get(key);
  if (!p) {
    p = (async () => {
      const ort = await requireNative();
      const session = await getSession(ort, index.d, threads);
      const { n, d } = index;
      const rowNorm = new Float64Array(n);
      for (let j = 0; j < n; j++) rowNorm[j] = Math.sqrt(index.norms[j]) * (1 + 1e-6);
      const nc = Math.ceil(n / chunkRows);
      const rows = Math.ceil(n / nc);
      const chunks: Chunk[] = [];
      let nmaxAll = 0, bmaxAll = 0;
      for (let start = 0; start < n; start += rows) {
        const r = Math.min(rows, n - start);
        let nmax = 0, bmax = 0;
        for (let j = start; j < start + r; j++) {
          if (index.norms[j] > nmax) nmax = index.norms[j];
          if (rowNorm[j] > bmax) bmax = rowNorm[j];
        }
        nmaxAll = Math.max(nmaxAll, nmax);
        bmaxAll = Math.max(bmaxAll, bmax);
        chunks.push({
          start,
          rows: r,
          bank: new ort.Tensor("float32", index.data.subarray(start * d, (start + r) * d), [r, d]),
          norms: new ort.Tensor("float32", index.norms.subarray(start, start + r), [r]),
          nmax,
          bmax,
        });
      }
      return { ort, session, chunks, rowNorm, nmax: nmaxAll, bmax: bmaxAll };
    })();
    m.set(key, p);
    p.catch(() => m.delete(key));
  }
  return p;
}

/** Create the session and the bank chunk tensors now (see `prepareBankSearch`). */
export async function prepareNative(
  index: BankIndexImpl,
  opts: NativeSearchOptions = {},
): Promise<void> {
  await nativeState(index, opts);
}

/** Counters of the last {@link searchNative} call (tests and bench). */
export interface NativeSearchStats {
  /** Queries accepted per round (round 0: k + extra candidates per chunk, then 8× more). */
  accepted: number[];
  /** Queries that went to the TypeScript reference. */
  reference: number;
  /** Wall time inside ONNX Runtime (Gemm + TopK runs), ms; the rest is host merge and re-rank. */
  ortMs: number;
}

/** Stats of the most recent native search in this process. */
export const lastNativeStats: NativeSearchStats = { accepted: [], reference: 0, ortMs: 0 };

/**
 * Exact top-k of every query on the native CPU engine; see the module doc for the exactness
 * argument. Shapes, k and the mask are validated by the caller (`searchTopK`).
 */
export async function searchNative(
  index: BankIndexImpl,
  queries: Float32Array,
  k: number,
  allowed: Uint8Array | undefined,
  opts: NativeSearchOptions = {},
): Promise<TopK> {
  const { extra } = resolved(opts);
  const st = await nativeState(index, opts);
  const { ort, session, chunks, rowNorm } = st;
  const d = index.d, bank = index.data, norms = index.norms;
  const q = queries.length / d;
  const nc = chunks.length;
  const maxRows = chunks.reduce((a, c) => Math.max(a, c.rows), 0);
  // Score block (queries × chunk rows): ≈ 2²⁰ floats (4 MiB, stays in cache) for D ≤ 256, where
  // the GEMM writes one float per 2·D flops and the TopK pass re-reads it; 2²³ for larger D, where
  // fewer, larger blocks re-pack the chunk less often. 2401 × 10 000 × 128 on 2 cores: 26–35 ms
  // per search vs 35–71 ms with 2²³; × 256: 44 vs 51 ms; 2401 × 100 000 × 512: 2²⁰ 5 % slower.
  const target = index.d <= 256 ? 2 ** 20 : 2 ** 23;
  const qb = opts.queryRows ?? Math.max(64, Math.floor(target / maxRows));
  if (!Number.isInteger(qb) || qb < 1) {
    throw new Error(`bank search: native queryRows=${qb} must be a positive integer`);
  }
  const u = 2 ** -24;
  const gam = ((d + 2) * u) / (1 - (d + 2) * u);
  const g = 1.25 * (gam + 2 * u);
  // Absolute part of the bound: the relative one assumes no underflow; each of the D + 2 products
  // and sums may lose up to 2⁻¹²⁶ more to subnormal rounding or a flush to zero (features ~1e-20).
  const ea = (d + 2) * 2 ** -125;

  let normT = chunks.map((c) => c.norms);
  if (allowed) {
    normT = chunks.map((c) => {
      const a = norms.slice(c.start, c.start + c.rows);
      for (let j = 0; j < c.rows; j++) if (!allowed[c.start + j]) a[j] = INF;
      return new ort.Tensor("float32", a, [c.rows]);
    });
  }

  const indices = new Int32Array(q * k);
  const distances = new Float32Array(q * k);
  const stats: NativeSearchStats = { accepted: [], reference: 0, ortMs: 0 };
  const qn2 = new Float64Array(q);
  let pending: number[] = [];
  const toRef: number[] = [];
  for (let i = 0; i < q; i++) {
    let s = 0;
    const o = i * d;
    for (let c = 0; c < d; c++) s += queries[o + c] * queries[o + c];
    qn2[i] = s;
    // f32 overflow of the scores could hide rows behind +∞: such queries go to the reference.
    if (s + 2 * Math.sqrt(s) * st.bmax + st.nmax < 1e36) pending.push(i);
    else toRef.push(i);
  }

  // Scratch for one query's exact re-rank.
  const sv: number[] = [], sj: number[] = [];
  const ub = new Float64Array(k);

  let kk = k + extra;
  for (let round = 0; round < 3 && pending.length; round++, kk *= 8) {
    const failed: number[] = [];
    for (let b0 = 0; b0 < pending.length; b0 += qb) {
      const sel = pending.slice(b0, b0 + qb);
      const nq = sel.length;
      let qdata: Float32Array;
      if (round === 0 && nq === q) qdata = queries;
      else if (round === 0 && sel[nq - 1] - sel[0] === nq - 1) {
        qdata = queries.subarray(sel[0] * d, (sel[0] + nq) * d);
      } else {
        qdata = new Float32Array(nq * d);
        for (let i = 0; i < nq; i++) {
          qdata.set(queries.subarray(sel[i] * d, (sel[i] + 1) * d), i * d);
        }
      }
      const qt = new ort.Tensor("float32", qdata, [nq, d]);
      // candidates: (nq, nc, kk) values and bank rows; per (query, chunk) count and τ
      const cv = new Float32Array(nq * nc * kk);
      const ci = new Int32Array(nq * nc * kk);
      const cnt = new Int32Array(nq * nc);
      const tau = new Float64Array(nq * nc);
      for (let c = 0; c < nc; c++) {
        const ch = chunks[c];
        const kc = Math.min(kk, ch.rows);
        const kTensor = new ort.Tensor("int64", BigInt64Array.of(BigInt(kc)), [1]);
        const t0 = performance.now();
        const res = await session.run({ q: qt, b: ch.bank, n: normT[c], k: kTensor });
        stats.ortMs += performance.now() - t0;
        const vals = res.vals.data as Float32Array;
        const idx64 = res.idx.data as BigInt64Array;
        const idx = new Int32Array(idx64.buffer, idx64.byteOffset, idx64.length * 2);
        for (let i = 0; i < nq; i++) {
          const o = (i * nc + c) * kk;
          for (let r = 0; r < kc; r++) {
            cv[o + r] = vals[i * kc + r];
            ci[o + r] = ch.start + idx[2 * (i * kc + r)];
          }
          cnt[i * nc + c] = kc;
          tau[i * nc + c] = kc === ch.rows ? INF : vals[i * kc + kc - 1];
        }
        res.vals.dispose();
        res.idx.dispose();
      }
      for (let i = 0; i < nq; i++) {
        const qi = sel[i];
        const qo = qi * d;
        const qs = qn2[qi];
        const qn = Math.sqrt(qs) * (1 + 1e-12);
        // Absolute slack for the f64 rounding of |q|², the bounds and the exact sums.
        const slack = 1e-9 * (qs + 2 * qn * st.bmax + st.nmax) + 1e-300;
        // Bound on every non-candidate's true squared distance.
        let lower = INF;
        for (let c = 0; c < nc; c++) {
          const t = tau[i * nc + c];
          if (t !== INF) {
            const ch = chunks[c];
            lower = Math.min(lower, qs + t - g * (ch.nmax + 2 * qn * ch.bmax) - ea);
          }
        }
        // T = k-th smallest upper bound v + E over the allowed candidates.
        ub.fill(INF);
        let nAllowed = 0;
        for (let c = 0; c < nc; c++) {
          const o = (i * nc + c) * kk;
          for (let r = 0; r < cnt[i * nc + c]; r++) {
            const j = ci[o + r];
            if (allowed && !allowed[j]) continue;
            nAllowed++;
            const x = cv[o + r] + g * (norms[j] + 2 * qn * rowNorm[j]) + ea;
            if (x < ub[k - 1]) {
              let p = k - 1;
              while (p > 0 && x < ub[p - 1]) {
                ub[p] = ub[p - 1];
                p--;
              }
              ub[p] = x;
            }
          }
        }
        if (nAllowed < k || !(ub[k - 1] < INF)) {
          failed.push(qi);
          continue;
        }
        // Survivors: candidates whose lower bound does not exceed T (others have k better rows).
        const cut = qs + ub[k - 1] + slack;
        sv.length = 0;
        sj.length = 0;
        for (let c = 0; c < nc; c++) {
          const o = (i * nc + c) * kk;
          for (let r = 0; r < cnt[i * nc + c]; r++) {
            const j = ci[o + r];
            if (allowed && !allowed[j]) continue;
            const lo = qs + cv[o + r] - g * (norms[j] + 2 * qn * rowNorm[j]) - ea;
            if (!(lo <= cut)) continue;
            const bo = j * d;
            let s = 0;
            for (let e = 0; e < d; e++) {
              const t = queries[qo + e] - bank[bo + e];
              s += t * t;
            }
            sv.push(s);
            sj.push(j);
          }
        }
        const order = Array.from(sv.keys()).sort((a, b) => sv[a] - sv[b] || sj[a] - sj[b]);
        if (order.length < k || !(sv[order[k - 1]] + slack < lower)) {
          failed.push(qi);
          continue;
        }
        for (let r = 0; r < k; r++) {
          indices[qi * k + r] = sj[order[r]];
          distances[qi * k + r] = Math.sqrt(sv[order[r]]);
        }
      }
      qt.dispose();
    }
    stats.accepted.push(pending.length - failed.length);
    pending = failed;
  }
  for (const qi of [...toRef, ...pending]) {
    const r = searchTopKRef(queries.subarray(qi * d, (qi + 1) * d), bank, d, k, allowed);
    indices.set(r.indices, qi * k);
    distances.set(r.distances, qi * k);
  }
  stats.reference = toRef.length + pending.length;
  lastNativeStats.accepted = stats.accepted;
  lastNativeStats.reference = stats.reference;
  lastNativeStats.ortMs = stats.ortMs;
  return { indices, distances, q, k };
}
