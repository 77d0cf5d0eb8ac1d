#!/usr/bin/env bash
# Study rows: the default on hazelnut_toy and grid, the head alone (--no-blend, same cached fit),
# and leave-one-dataset-out (a head fitted on one dataset scoring the other).
set -uo pipefail
cd "$(dirname "$0")/.."
S=scripts/study_row.sh; G=../shared/data/mvtec_ad; B=results/study/banks
head_of() { python3 -c "import json,sys; print(json.load(open('results/study/$1/results.json'))['heads'][0]['path'])"; }
$S hz_default
$S hz_default_noblend --no-blend
$S grid_default --data $G --load-bank $B/grid.safetensors
$S grid_default_noblend --data $G --load-bank $B/grid.safetensors --no-blend
$S lodo_grid_with_hz_head --data $G --load-bank $B/grid.safetensors --head "$(head_of hz_default)"
$S lodo_hz_with_grid_head --load-bank $B/hz.safetensors --head "$(head_of grid_default)"
