#!/usr/bin/env bash
# Lint the checkout: ruff (rules in pyproject.toml [tool.ruff]) on the package, the tests and the
# scripts, then mypy (pyproject.toml [tool.mypy]: the whole package, strict on the core stages).
# Both always run, so one pass lists everything; the exit status is non-zero if either reports.
#
#   bash scripts/lint.sh                        # tools from .venv (pip install -e ".[lint]")
#   PYTHON=/path/to/python bash scripts/lint.sh # another environment with the lint extra
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

say() { printf '[lint] %s\n' "$*" >&2; }

if ! "$PY" -c 'import ruff, mypy' 2>/dev/null; then
  say "ruff and mypy are not installed for $PY: run $PY -m pip install -e \".[lint]\""
  exit 2
fi
status=0
say "ruff check gridplan tests scripts"
"$PY" -m ruff check gridplan tests scripts || status=1
say "mypy (files and strict modules from pyproject.toml)"
"$PY" -m mypy || status=1
[ $status = 0 ] && say "clean" || say "problems found (above)"
exit $status
