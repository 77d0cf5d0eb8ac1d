#!/usr/bin/env bash
# One row of the head study (README "Study"): runs `deno task eval` with the given options,
# records the wall time and the metrics in results/study/rows.tsv.
#   scripts/study_row.sh NAME [deno task eval options...]
set -euo pipefail
name=$1; shift
cd "$(dirname "$0")/.."
out=results/study/$name
mkdir -p results/study
t0=$(date +%s)
deno task eval --out "$out" --no-png "$@" > "results/study/$name.log" 2>&1 || { echo "$name failed (see results/study/$name.log)"; exit 1; }
t1=$(date +%s)
python3 - "$name" "$((t1 - t0))" "$out/results.json" "$*" <<'PY'
import json, sys
name, secs, path, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
r = json.load(open(path))
m = r["mean"]
keys = ["image_auroc", "image_ap", "image_f1max", "pixel_auroc", "pixel_ap", "pixel_f1max", "aupro"]
fit = ""
# wall times of the fit: run.json (written next to results.json)
import os
run = json.load(open(os.path.join(os.path.dirname(path), "run.json")))
times = (run.get("heads") or [{}])[0]
for h in r.get("heads", []):
    if h.get("fit"):
        f = h["fit"]
        fit = f"best {f.get('bestStep')} val {max([v['score'] for v in f.get('validation', [])] or [float('nan')]):.4f} prep {times.get('prepSeconds', 0):.0f}s train {times.get('trainSeconds', 0):.0f}s"
vals = "\t".join("n/a" if m[k] is None else f"{100 * m[k]:.2f}" for k in keys)
line = f"{name}\t{vals}\t{secs}\t{fit}\t{args}"
open("results/study/rows.tsv", "a").write(line + "\n")
print(line)
PY
