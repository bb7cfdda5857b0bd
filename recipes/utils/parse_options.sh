#!/usr/bin/env bash
# Kaldi-style option parsing, sourced by run.sh after it has set its defaults (and sourced cmd.sh):
#   --some-option VALUE | --some-option=VALUE   sets the shell variable some_option
# The options are the lines `name=default  # description` of run.sh (before it sources this file) and of
# cmd.sh; a description may go on over the next lines that hold only a comment. Only those variables can
# be set (a typo is an error, not a silent no-op); --help prints the script's header comment block and
# every option with its description and current value.
# Paths: an option whose description starts with "(path)" given a relative path on the command line is
# taken from the directory run.sh was started in ($OLDPWD: run.sh's `cd "$(dirname "$0")"` before the
# defaults is its only cd); the defaults are relative to the recipe folder.
# Positional arguments are left in "$@".
__script=$(basename "$0")
__options() {  # one line "name<TAB>description" per option of run.sh (up to this file) and cmd.sh
  awk '
    function flush() { if (name != "") print name "\t" desc; name = "" }
    FILENAME != prev { flush(); prev = FILENAME; stop = 0 }
    stop { next }
    /utils\/parse_options\.sh/ { flush(); stop = 1; next }
    /^[a-z_][a-z0-9_]*=/ {
      flush()
      if (index($0, "#") == 0) next
      name = $0; sub(/=.*/, "", name)
      desc = $0; sub(/^[^#]*#[ \t]*/, "", desc)
      next
    }
    /^[ \t]+#/ && name != "" { line = $0; sub(/^[ \t]+#[ \t]*/, "", line); desc = desc " " line; next }
    { flush() }
    END { flush() }
  ' "$__script" ${cmd_file:-cmd.sh} 2>/dev/null
}
declare -A __path_opt=()
while IFS=$'\t' read -r __v __d; do
  case "$__d" in "(path)"*) __path_opt[$__v]=1 ;; esac
done < <(__options)
while true; do
  [ -z "${1:-}" ] && break
  case "$1" in
    --help|-h)
      sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$__script"
      echo
      echo "Options (--name VALUE or --name=VALUE; shown with their current values; (path): a relative path given"
      echo "on the command line is taken from the directory you run $__script in, the defaults from the recipe folder):"
      while IFS=$'\t' read -r __v __d; do
        if declare -p "$__v" 2>/dev/null | grep -q '^declare -a'; then
          eval "__val=\"\${$__v[*]-}\""
        else
          __val=${!__v-}
        fi
        printf '  --%s %s\n' "${__v//_/-}" "${__val:-\"\"}"
        echo "$__d" | fold -s -w 92 | sed 's/^/        /'
      done < <(__options)
      exit 0 ;;
    --*=*)
      __name=${1%%=*}; __name=${__name#--}; __name=${__name//-/_}; __value=${1#*=}; shift ;;
    --*)
      __name=${1#--}; __name=${__name//-/_}
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" >&2; exit 1; fi
      __value=$2; shift 2 ;;
    *) break ;;
  esac
  if ! declare -p "$__name" >/dev/null 2>&1; then
    echo "$0: unknown option --${__name//_/-} (see $0 --help)" >&2; exit 1
  fi
  if [ -n "${__path_opt[$__name]:-}" ]; then
    case "$__value" in /*|'') ;; *) __value=$OLDPWD/$__value ;; esac
  fi
  # append for options declared as bash arrays (e.g. --train repeated), else assign
  if declare -p "$__name" 2>/dev/null | grep -q '^declare -a'; then
    eval "$__name+=(\"\$__value\")"
  else
    printf -v "$__name" '%s' "$__value"
  fi
done
unset __name __value __v __d __val __script __path_opt
unset -f __options
true
