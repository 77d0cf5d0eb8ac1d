#!/bin/bash
# Sharded evaluation on Slurm, end to end:
#   1. prepare once: the bank (and, for SNARM, the fitted head in the fit cache) — one job;
#   2. N array tasks score the parts (--load-bank; the head comes from the shared fit cache);
#   3. merge when all parts succeeded.
# Usage: SNARM_DIR=… SNARM_OUT=… slurm/submit.sh N [cpu|gpu] -- <deno task eval options>
# (the options must name the data; e.g. -- --data /shared/mvtec_anomaly_detection --method bank)
set -euo pipefail
N=${1:?number of parts}; KIND=${2:-cpu}; shift 2 || true; [ "${1:-}" = "--" ] && shift
: "${SNARM_DIR:?}" "${SNARM_OUT:?}"
mkdir -p "$SNARM_OUT"
export SNARM_EVAL_ARGS="$* --load-bank $SNARM_OUT/bank.safetensors --cache-dir $SNARM_OUT/fit-cache"
prep=$(sbatch --parsable --job-name=snarm-prepare --cpus-per-task=2 --mem=16G \
  --output=snarm-prepare-%j.out --wrap "cd $SNARM_DIR && XDG_RUNTIME_DIR=/tmp deno task eval \
  $* --prepare-only --save-bank $SNARM_OUT/bank.safetensors --cache-dir $SNARM_OUT/fit-cache \
  --out $SNARM_OUT/prepare")
arr=$(sbatch --parsable --dependency=afterok:"$prep" --array=0-$((N - 1)) \
  "$SNARM_DIR/slurm/eval_$KIND.sbatch")
merge=$(sbatch --parsable --dependency=afterok:"$arr" "$SNARM_DIR/slurm/merge.sbatch")
echo "prepare $prep, array $arr (0-$((N - 1))), merge $merge → $SNARM_OUT/merged"
