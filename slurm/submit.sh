#!/bin/bash
# Sharded evaluation on Slurm, end to end:
#   1. prepare once: the bank (and, for SNARM, the fitted head in the fit cache) — one job;
#   2. N array tasks score the parts (--load-bank; the head comes from the shared fit cache);
#   3. merge when all parts succeeded.
# Usage: SNARM_DIR=… SNARM_OUT=… slurm/submit.sh N [cpu|gpu] -- <deno task eval options>
# (the options must name the data; e.g. -- --data /shared/mvtec_anomaly_detection --method bank)
# Paths may hold spaces: the options travel to the jobs in $SNARM_OUT/eval.args, one per entry.
# To re-run failed parts only: SNARM_SHARDS=N SNARM_EVAL_ARGS_FILE=$SNARM_OUT/eval.args
#   sbatch --array=3,5 slurm/eval_cpu.sbatch   (then slurm/merge.sbatch)
set -euo pipefail
N=${1:?usage: submit.sh N [cpu|gpu] -- <deno task eval options>}
shift
KIND=cpu
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  KIND=$1
  shift
fi
[ "${1:-}" = "--" ] && shift
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: N must be a positive integer, got $N" >&2; exit 2; }
case "$KIND" in
  cpu | gpu) ;;
  *) echo "submit.sh: the kind must be cpu or gpu, got $KIND" >&2; exit 2 ;;
esac
: "${SNARM_DIR:?}" "${SNARM_OUT:?}"
mkdir -p "$SNARM_OUT"
# the parts' options, NUL-separated (read by eval_*.sbatch)
ARGS_FILE=$SNARM_OUT/eval.args
printf '%s\0' "$@" --load-bank "$SNARM_OUT/bank.safetensors" --cache-dir "$SNARM_OUT/fit-cache" \
  > "$ARGS_FILE"
export SNARM_EVAL_ARGS_FILE=$ARGS_FILE SNARM_SHARDS=$N
# the prepare job's command line, every word quoted for the shell of --wrap
prepare=$(printf '%q ' cd "$SNARM_DIR")"&& XDG_RUNTIME_DIR=/tmp "$(printf '%q ' deno task eval "$@" \
  --prepare-only --save-bank "$SNARM_OUT/bank.safetensors" --cache-dir "$SNARM_OUT/fit-cache" \
  --out "$SNARM_OUT/prepare")
prep=$(sbatch --parsable --job-name=snarm-prepare --cpus-per-task=2 --mem=16G \
  --output=snarm-prepare-%j.out --wrap "$prepare")
arr=$(sbatch --parsable --dependency=afterok:"$prep" --array=0-$((N - 1)) \
  "$SNARM_DIR/slurm/eval_$KIND.sbatch")
merge=$(sbatch --parsable --dependency=afterok:"$arr" "$SNARM_DIR/slurm/merge.sbatch")
echo "prepare $prep, array $arr (0-$((N - 1))), merge $merge → $SNARM_OUT/merged"
