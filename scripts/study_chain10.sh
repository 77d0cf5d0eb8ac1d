#!/usr/bin/env bash
# End to end: magnetic_tile bank-only at the official geometry and default sizes from scratch
# (backbone, coreset and search on the CPU engines): wall time and the same metrics as before.
set -uo pipefail
cd "$(dirname "$0")/.."
S=scripts/study_row.sh; MT=../shared/data/magnetic_tile
$S mt_bank_crop_e2e --data $MT --method bank
