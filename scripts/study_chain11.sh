#!/usr/bin/env bash
# The defaults after the 240-step change (hazelnut reuses the hz_steps240 fit: same key).
set -uo pipefail
cd "$(dirname "$0")/.."
S=scripts/study_row.sh; MT=../shared/data/magnetic_tile; G=../shared/data/mvtec_ad; B=results/study/banks
$S hz_default240
$S grid_default240 --data $G --load-bank $B/grid.safetensors
$S mt_default240 --data $MT --no-crop
$S mt_default240_noblend --data $MT --no-crop --no-blend
$S hz_default240_noblend --no-blend
$S grid_default240_noblend --data $G --load-bank $B/grid.safetensors --no-blend
