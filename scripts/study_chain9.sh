#!/usr/bin/env bash
# Study rows after magnetic_tile's default fit: its bank-only row on the same bank, the defaults
# on hazelnut_toy and grid (fit cache v2), their head-alone rows, then fit settings.
set -uo pipefail
cd "$(dirname "$0")/.."
S=scripts/study_row.sh; MT=../shared/data/magnetic_tile; G=../shared/data/mvtec_ad; B=results/study/banks
fit_dir() { python3 -c "import json,os; print(os.path.dirname(json.load(open('results/study/$1/results.json'))['heads'][0]['path']))"; }
$S mt_bank --data $MT --no-crop --method bank --load-bank "$(fit_dir mt_default)/bank.safetensors"
$S mt_default_noblend --data $MT --no-crop --no-blend
$S hz_default2
$S hz_default2_noblend --no-blend
$S grid_default2 --data $G --load-bank $B/grid.safetensors
$S unified_hz_grid --data results/study/unified_data
$S hz_steps240 --fit-steps 240
$S hz_lr1e-3 --fit-lr 1e-3
$S hz_init_shipped --init-head shipped
