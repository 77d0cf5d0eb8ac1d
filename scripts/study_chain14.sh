#!/usr/bin/env bash
# The defaults after λ per metric group (FIT_VERSION 6): each dataset's default SNARM run (a fresh
# fit). The banks are compared byte for byte with the FIT_VERSION 5 fits' (same bank ⇒ the
# bank-only rows of study_chain12.sh stand).
set -uo pipefail
cd "$(dirname "$0")/.."
S=scripts/study_row.sh; MT=../shared/data/magnetic_tile; G=../shared/data/mvtec_ad
C=${SNARM_CACHE:-$HOME/.cache/snarm}
newest() { ls -td "$C"/fit-* | head -1; }
$S mt_groups --data $MT --no-crop; cp "$(newest)/bank.safetensors" /tmp/mt_bank_v6.safetensors
$S hz_groups; cp "$(newest)/bank.safetensors" /tmp/hz_bank_v6.safetensors
$S grid_groups --data $G; cp "$(newest)/bank.safetensors" /tmp/grid_bank_v6.safetensors
