#!/usr/bin/env bash
# The defaults after the dominance rule for λ (FIT_VERSION 5): each dataset's default SNARM run
# (a fresh fit), then bank-only with that fit's bank (same bank, same geometry).
set -uo pipefail
cd "$(dirname "$0")/.."
S=scripts/study_row.sh; MT=../shared/data/magnetic_tile; G=../shared/data/mvtec_ad
C=${SNARM_CACHE:-$HOME/.cache/snarm}
newest() { ls -td "$C"/fit-* | head -1; }
$S mt_dominance --data $MT --no-crop
$S mt_dominance_bank --data $MT --no-crop --method bank --load-bank "$(newest)/bank.safetensors"
$S hz_dominance
$S hz_dominance_bank --method bank --load-bank "$(newest)/bank.safetensors"
$S grid_dominance --data $G
$S grid_dominance_bank --data $G --method bank --load-bank "$(newest)/bank.safetensors"
