#!/usr/bin/env bash
# Kaldi-style option parsing, sourced by run.sh after it has set its defaults:
#   --some-option VALUE | --some-option=VALUE   sets the shell variable some_option
# Only variables that already exist can be set (a typo is an error, not a silent no-op);
# --help prints the script's header comment block and the current values.
# Positional arguments are left in "$@".
while true; do
  [ -z "${1:-}" ] && break
  case "$1" in
    --help|-h)
      sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$(basename "$0")"
      echo "options (current values):"
      for __v in $(sed -n 's/^\([a-z_][a-z0-9_]*\)=.*/\1/p' "$(basename "$0")" ${cmd_file:-cmd.sh} 2>/dev/null | sort -u); do
        printf '  --%s %s\n' "${__v//_/-}" "${!__v-}"
      done
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
  # append for options declared as bash arrays (e.g. --train repeated), else assign
  if declare -p "$__name" 2>/dev/null | grep -q '^declare -a'; then
    eval "$__name+=(\"\$__value\")"
  else
    printf -v "$__name" '%s' "$__value"
  fi
done
unset __name __value __v
true
