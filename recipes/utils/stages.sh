#!/usr/bin/env bash
# Helpers for numbered, resumable stages. Sourced by run.sh after parse_options.sh.
#   if run_stage 3 "train the UBM" "$exp/ubm/final.ubm.npz"; then ...commands...; fi
# run_stage N DESCRIPTION OUTPUT... returns 0 (run it) when stage <= N <= stop_stage and either
# --force true or some OUTPUT is missing; otherwise it says why it skips and returns 1.
# Every spkrec command writes its outputs atomically, so an existing output is a complete one and a
# killed stage is simply run again.
# the parallel options every per-utterance spkrec command takes (from cmd.sh or the command line)
par="--nj ${nj:-1} --backend ${backend:-loky}${scheduler:+ --scheduler $scheduler}"

log() { echo "$(date '+%H:%M:%S') $*" >&2; }

run_stage() {
  local n=$1 desc=$2; shift 2
  if [ "$n" -lt "$stage" ] || [ "$n" -gt "$stop_stage" ]; then return 1; fi
  if [ "${force:-false}" != true ] && [ $# -gt 0 ]; then
    local missing=false f
    for f in "$@"; do [ -e "$f" ] || missing=true; done
    if [ $missing = false ]; then log "stage $n: $desc — outputs exist, skipping (--force true to redo)"; return 1; fi
  fi
  log "stage $n: $desc"
  current_stage=$n
  return 0
}

# run LOGFILE CMD...: run a command, teeing its output into LOGFILE; stop the recipe if it fails.
run() {
  local logf=$1; shift
  mkdir -p "$(dirname "$logf")"
  echo "# $*" > "$logf"
  if ! "$@" 2>&1 | tee -a "$logf" >&2; then
    log "stage ${current_stage:-?} failed: $* (log: $logf)"; exit 1
  fi
}
