#!/usr/bin/env bash
# Study: four held-out validation kinds (the head trains on scratch, blob, edge, smear; validation
# anomalies are stain, paint, structure, texture) — does validation then see what the test sees?
set -uo pipefail
cd "$(dirname "$0")/.."
S=scripts/study_row.sh; MT=../shared/data/magnetic_tile; G=../shared/data/mvtec_ad
K="--synth scratch,blob,edge,smear --val-synth stain,paint,structure,texture"
# hz_val4 ran first on its own (same command)
$S mt_val4 --data $MT --no-crop $K
$S grid_val4 --data $G $K
