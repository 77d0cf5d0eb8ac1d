#!/bin/bash
# The body of slurm/eval_cpu.sbatch and slurm/eval_gpu.sbatch: run part I of N of a sharded
# evaluation (the array task's environment: SNARM_DIR, SNARM_OUT, SLURM_ARRAY_TASK_*, and
# SNARM_SHARDS, SNARM_EVAL_ARGS_FILE or SNARM_EVAL_ARGS; see those scripts).
set -euo pipefail
# Part I of N: I is the task id; N is SNARM_SHARDS (submit.sh sets it), or the array's size when
# the array is the whole 0..N-1 (a re-submission of some tasks, --array=3,5, needs SNARM_SHARDS).
I=$SLURM_ARRAY_TASK_ID
if [ -n "${SNARM_SHARDS:-}" ]; then
  N=$SNARM_SHARDS
elif [ "${SLURM_ARRAY_TASK_MIN:-0}" = 0 ] &&
  [ "${SLURM_ARRAY_TASK_COUNT:-}" = "$((${SLURM_ARRAY_TASK_MAX:-0} + 1))" ]; then
  N=$SLURM_ARRAY_TASK_COUNT
else
  echo "snarm: array task $I of a partial array: set SNARM_SHARDS to the number of parts" >&2
  exit 2
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
cd "$SNARM_DIR"
# The options: one per line (NUL-separated) in SNARM_EVAL_ARGS_FILE (submit.sh writes it; paths
# may hold spaces), else the words of SNARM_EVAL_ARGS.
ARGS=()
if [ -n "${SNARM_EVAL_ARGS_FILE:-}" ]; then
  mapfile -d '' -t ARGS < "$SNARM_EVAL_ARGS_FILE"
else
  # shellcheck disable=SC2206 # SNARM_EVAL_ARGS is a list of words
  ARGS=(${SNARM_EVAL_ARGS:-})
fi
exec deno task eval --shard "$I/$N" --out "$SNARM_OUT/shard-$I" "${ARGS[@]}"
