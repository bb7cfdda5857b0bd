# Sourced by run.sh (Kaldi's path.sh): make `spkrec` callable.
# Uses the project's virtual environment when there is one at the repository root.
__root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if ! command -v spkrec >/dev/null 2>&1 && [ -x "$__root/.venv/bin/spkrec" ]; then
  export PATH="$__root/.venv/bin:$PATH"
fi
command -v spkrec >/dev/null 2>&1 || { echo "spkrec is not installed: run 'pip install -e .' at $__root" >&2; exit 1; }
export PYTHONUNBUFFERED=1 LC_ALL=C
SPKREC_ROOT=$__root
unset __root
