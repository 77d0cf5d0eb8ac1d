"""Peer for bench/knn_native_bench.ts: exact top-3 with faiss (IndexFlatL2, CPU) on the same
sizes, on this machine, in the same run. Prints `knn <size> faiss: X GFLOP/s` lines
(GFLOP/s = 2*Q*N*D / median wall time of index.search over `runs` calls, the index built once).

Needs Debian's python3-faiss (`apt-get install -y python3-faiss`; faiss 1.7.3 on Debian 12).
Threads = cores (or argv[2]); run with OMP_WAIT_POLICY=PASSIVE so idle OpenMP threads do not spin.
Usage: /usr/bin/python3 bench/knn_faiss.py small,big [threads] [--paired]

With `--paired` (one size; bench/_peer.ts startPairedPeer) it builds that size's index, prints
`ready` and answers each line `W R` on stdin with W untimed and R timed searches, `t <s> <s> ...`,
until stdin closes: bench/knn_native_bench.ts alternates its rounds with ours.
"""
import os
import sys
import time

import faiss
import numpy as np

SIZES = {"small": (2401, 10_000, 128), "big": (2401, 100_000, 512)}
K = 3


def data(name):
    """The size's queries, bank and a built IndexFlatL2 (the same seeded data for every size)."""
    q, n, d = SIZES[name]
    rng = np.random.default_rng(0)
    queries = (rng.random((q, d), dtype=np.float32) - 0.5).astype(np.float32)
    bank = (rng.random((n, d), dtype=np.float32) - 0.5).astype(np.float32)
    index = faiss.IndexFlatL2(d)
    index.add(bank)
    return queries, index


def paired(name: str) -> None:
    queries, index = data(name)
    index.search(queries, K)
    print("ready", flush=True)
    for line in sys.stdin:
        warm, reps = (int(v) for v in line.split())
        for _ in range(warm):
            index.search(queries, K)
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            index.search(queries, K)
            ts.append(time.perf_counter() - t)
        print("t " + " ".join(f"{v:.6f}" for v in ts), flush=True)


def main() -> None:
    is_paired = "--paired" in sys.argv
    if is_paired:
        sys.argv.remove("--paired")
    names = (sys.argv[1] if len(sys.argv) > 1 else "small,big").split(",")
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else os.cpu_count() or 1
    faiss.omp_set_num_threads(threads)
    if is_paired:
        paired(names[0])
        return
    for name in names:
        q, n, d = SIZES[name]
        queries, index = data(name)
        for _ in range(1 if name == "big" else 4):  # warm-up
            index.search(queries, K)
        runs = 3 if name == "big" else 9
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            index.search(queries, K)
            times.append(time.perf_counter() - t)
        med = sorted(times)[len(times) // 2]
        gf = 2 * q * n * d / med / 1e9
        print(f"knn {name} faiss: {gf:.1f} GFLOP/s", flush=True)
        print(f"  {q}x{n}x{d} k={K}: median {med * 1e3:.0f} ms of {runs}, "
              f"faiss {faiss.__version__}, {threads} threads", flush=True)


if __name__ == "__main__":
    main()
