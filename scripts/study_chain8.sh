#!/usr/bin/env bash
# Study rows: magnetic_tile at full size with the default (no crop), bank-only on the fit's own
# bank, then the fit settings (steps, lr, fine-tuning the shipped head) and a unified fit.
set -uo pipefail
cd "$(dirname "$0")/.."
S=scripts/study_row.sh; MT=../shared/data/magnetic_tile
fit_dir() { python3 -c "import json,os; print(os.path.dirname(json.load(open('results/study/$1/results.json'))['heads'][0]['path']))"; }
$S mt_default --data $MT --no-crop
$S mt_bank --data $MT --no-crop --method bank --load-bank "$(fit_dir mt_default)/bank.safetensors"
$S mt_default_noblend --data $MT --no-crop --no-blend
$S unified_hz_grid --data results/study/unified_data
$S hz_steps240 --fit-steps 240
$S hz_lr1e-3 --fit-lr 1e-3
$S hz_init_shipped --init-head shipped
