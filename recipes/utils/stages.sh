#!/usr/bin/env bash
# Helpers for numbered, resumable stages. Sourced by run.sh after parse_options.sh.
#   stages="0 1 2 3 20"                          the recipe's stage numbers (set before sourcing)
#   stage_opts[3]="num_gauss ubm_iters seed"     options a stage's outputs depend on (after sourcing)
#   if run_stage 3 "train the UBM" "$exp/ubm/final.ubm.npz"; then ...commands...; fi
#   finish_stages                                at the end of run.sh
# Each stage that runs gets one line "stage N: finished in S s" and a row in EXP/log/stage_times.tsv
# (columns: run (when this run started, UTC), stage, seconds (wall), description), appended per run.
# run_stage N DESCRIPTION OUTPUT... returns 0 (run it) when stage <= N <= stop_stage and either
# --force true, some OUTPUT is missing, or the stage last ran with other options; otherwise it says why
# it skips and returns 1. What made a stage's outputs is recorded in EXP/.stages/N (its options' values),
# written when the stage has finished; a stage that runs deletes the records of the stages after it, so
# they rerun too (their inputs changed), and a rerun because of changed options redoes all its work
# (force=true inside it). Every spkrec command writes its outputs atomically, so an existing output is a
# complete one and a killed stage is simply run again. One run at a time per EXP (a lock).

# the parallel options every per-utterance spkrec command takes (from cmd.sh or the command line)
par="--nj ${nj:-1} --backend ${backend:-loky}${scheduler:+ --scheduler $scheduler}"
declare -A stage_opts=()
user_force=${force:-false}
finished_stage=
_run_started=$(date -u '+%Y-%m-%dT%H:%M:%SZ')
_stage_start=
_stage_desc=

# what the terminal shows (cmd.sh: verbose=false quiet=false): stage lines and one summary line per command;
# quiet=true: warnings, errors and the results table only; verbose=true: every message of every command
case "${verbose:-false}/${quiet:-false}" in
  false/false) export SPKREC_VERBOSITY=normal ;;
  true/false|true/true) export SPKREC_VERBOSITY=verbose ;;
  false/true) export SPKREC_VERBOSITY=quiet ;;
  *) echo "$0: --verbose and --quiet take true or false (got '${verbose:-}', '${quiet:-}')" >&2; exit 1 ;;
esac
_last_log=
log() {
  if [ "$SPKREC_VERBOSITY" = quiet ]; then _last_log="$(date '+%H:%M:%S') $*"; else echo "$(date '+%H:%M:%S') $*" >&2; fi
}
# quiet: a recipe that stops with an error shows the message it stopped on (e.g. "run stage 2 first")
trap '__code=$?; [ $__code -ne 0 ] && [ -n "$_last_log" ] && echo "$_last_log" >&2; exit $__code' EXIT

_is_stage() { local s; for s in $stages; do [ "$s" = "$1" ] && return 0; done; return 1; }
if [ -n "${stages:-}" ]; then
  case "$stage" in ''|*[!0-9]*) echo "$0: --stage $stage is not a number; stages: $stages" >&2; exit 1 ;; esac
  case "$stop_stage" in ''|*[!0-9]*) echo "$0: --stop-stage $stop_stage is not a number; stages: $stages" >&2; exit 1 ;; esac
  _is_stage "$stage" || { echo "$0: no stage $stage; stages: $stages" >&2; exit 1; }
  if [ "$stop_stage" != 100 ] && ! _is_stage "$stop_stage"; then
    echo "$0: no stage $stop_stage; stages: $stages" >&2; exit 1
  fi
  [ "$stop_stage" -ge "$stage" ] || { echo "$0: --stop-stage $stop_stage is before --stage $stage" >&2; exit 1; }
fi

# one run per experiment dir: the kernel releases the lock when this shell exits, however it exits
mkdir -p "$exp"
exec 9>>"$exp/.lock"
if ! flock -n 9; then
  echo "$0: $exp is in use by another run (PID $(cat "$exp/.lock.pid" 2>/dev/null || echo '?')); wait for it or use another --exp" >&2
  exit 1
fi
echo $$ > "$exp/.lock.pid"

_stage_signature() {  # the values of the options stage N depends on, one "name=value" per line
  local v; for v in ${stage_opts[$1]:-}; do printf '%s=%s\n' "$v" "${!v-}"; done
}

_record_finished() {  # the stage that ran last has finished: record its options and its wall time
  [ -n "$finished_stage" ] || return 0
  mkdir -p "$exp/.stages"
  _stage_signature "$finished_stage" > "$exp/.stages/$finished_stage.tmp"
  mv "$exp/.stages/$finished_stage.tmp" "$exp/.stages/$finished_stage"
  local secs times=$exp/log/stage_times.tsv
  secs=$(awk -v a="$_stage_start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
  mkdir -p "$exp/log"
  [ -s "$times" ] || printf 'run\tstage\tseconds\tdescription\n' > "$times"
  printf '%s\t%s\t%s\t%s\n' "$_run_started" "$finished_stage" "$secs" "$_stage_desc" >> "$times"
  log "stage $finished_stage: finished in $secs s"
  finished_stage=
}

_invalidate_after() {  # stages after N must rerun: forget what made their outputs
  local f n
  for f in "$exp"/.stages/*; do
    [ -e "$f" ] || continue
    n=$(basename "$f"); case "$n" in *[!0-9]*) continue ;; esac
    [ "$n" -gt "$1" ] && rm -f "$f"
  done
  return 0
}

run_stage() {
  local n=$1 desc=$2; shift 2
  _record_finished
  force=$user_force
  if [ "$n" -lt "$stage" ] || [ "$n" -gt "$stop_stage" ]; then return 1; fi
  local record=$exp/.stages/$n
  if [ "$force" != true ] && [ $# -gt 0 ]; then
    local missing=false f
    for f in "$@"; do [ -e "$f" ] || missing=true; done
    if [ $missing = false ]; then
      if [ -f "$record" ] && [ "$(cat "$record")" = "$(_stage_signature "$n")" ]; then
        log "stage $n: $desc — outputs exist, skipping (--force true to redo)"; return 1
      fi
      if [ -f "$record" ]; then
        log "stage $n: $desc — options changed since its outputs were made ($(_stage_signature "$n" | \
          diff "$record" - | sed -n 's/^> //p' | tr '\n' ' ')); redoing it and the stages after it"
      else
        log "stage $n: $desc — outputs of an earlier stage or run not recorded as complete; redoing it"
      fi
      force=true
    fi
  fi
  [ -f "$record" ] && [ "$(cat "$record")" != "$(_stage_signature "$n")" ] && force=true
  log "stage $n: $desc"
  rm -f "$record"
  _invalidate_after "$n"
  current_stage=$n
  finished_stage=$n
  _stage_start=$EPOCHREALTIME
  _stage_desc=$desc
  return 0
}

# finish_stages FILE...: record the last stage; "done" names the given files that exist
finish_stages() {
  _record_finished
  local have=() f
  for f in "$@"; do [ -e "$f" ] && have+=("$f"); done
  if [ ${#have[@]} -gt 0 ]; then log "done: ${have[*]}"; else log "done (stages $stage-$stop_stage)"; fi
}

# run LOGFILE CMD...: run one command as Kaldi's run.pl does. LOGFILE (one per command invocation: it is
# rewritten each time, and a second command of this run naming the same file gets NAME.2.log) starts with
# the command line and the start time and ends with "# Accounting: time=<s> threads=<nj>" and
# "# Ended (code <c>) at <date>". A spkrec command's stdout and every message (debug included, through
# $SPKREC_LOG_FILE) go there; its stderr stays on the terminal: progress bars when that is a terminal,
# warnings, errors and one summary line. Other commands' output all goes to the log. When the command fails,
# the last lines of its log are shown with the log's path, and the recipe stops.
declare -A _run_logs=()
run() {
  local logf=$1; shift
  if [ -n "${_run_logs[$logf]:-}" ]; then  # never two commands in one log file
    local n=2; while [ -n "${_run_logs[${logf%.log}.$n.log]:-}" ]; do n=$((n + 1)); done
    logf=${logf%.log}.$n.log
  fi
  _run_logs[$logf]=1
  mkdir -p "$(dirname "$logf")"
  local threads=1 prev= a
  for a in "$@"; do
    [ "$prev" = --nj ] && threads=$a
    case "$a" in --nj=*) threads=${a#--nj=} ;; esac
    prev=$a
  done
  { printf '#'; printf ' %q' "$@"; printf '\n# Started at %s\n#\n' "$(date)"; } > "$logf"
  local start=$EPOCHREALTIME code=0
  if [ "$1" = spkrec ]; then
    SPKREC_LOG_FILE=$logf "$@" >> "$logf" || code=$?
  else
    "$@" >> "$logf" 2>&1 || code=$?
  fi
  local secs; secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
  printf '# Accounting: time=%s threads=%s\n# Ended (code %d) at %s\n' "$secs" "$threads" "$code" "$(date)" >> "$logf"
  if [ "$code" -ne 0 ]; then
    _last_log=
    {
      echo "$(date '+%H:%M:%S') stage ${current_stage:-?} failed (code $code): $*"
      echo "  the last lines of its log $logf:"
      tail -n 12 "$logf" | sed 's/^/  | /'
    } >&2
    exit 1
  fi
}
