#!/usr/bin/env bash
# The project's tasks; the Makefile targets of the same names call this script, and it works
# without make too:  scripts/tasks.sh book | book-strict | test | reproduce | ci-notebooks | clean
#
# Environment: VENV (default .venv), PYTHON (interpreter that creates the venv, default python3),
# PROFILE (reproduce; default: each page's own profile), NAMES (reproduce; default all notebooks), ARGS (extra
# arguments for prunerob reproduce or pytest).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV="${VENV:-.venv}"
BIN="$VENV/bin"
export HF_HUB_OFFLINE=1          # nothing may download at test or build time
export PYTHONDONTWRITEBYTECODE=1

setup() { scripts/setup.sh; }
# ARGS / NAMES are split into words with shell-like quoting, ARGS="-p seeds '[0, 1]'", by xargs
# (which only splits and unquotes: nothing in them is ever executed or expanded)
split_words() {  # split_words VAR_NAME TEXT
  local -n _out="$1"
  _out=()
  [[ -z "$2" ]] && return 0
  local words
  if ! words="$(printf '%s' "$2" | xargs printf '%s\0' 2>/dev/null | tr '\0' '\036')"; then
    echo "tasks.sh: cannot split $1='$2' into words (unmatched quote?)" >&2
    exit 2
  fi
  IFS=$'\036' read -r -a _out <<< "$words" || true
}
split_words args "${ARGS:-}"
split_words names "${NAMES:-}"

task="${1:-help}"
case "$task" in
  setup)
    setup ;;
  book)
    setup
    "$BIN/jupyter-book" build book "${args[@]}"
    echo "book: open _build/html/index.html" ;;
  book-strict)
    setup
    # -W: warnings are errors, -n: nitpicky (every reference must resolve), --keep-going: report
    # all of them, --all: re-read every page (an incremental build would not repeat old warnings)
    "$BIN/jupyter-book" build book --all -W -n --keep-going "${args[@]}"
    echo "book: open _build/html/index.html" ;;
  test)
    setup
    rc=0
    "$BIN/python" -m pytest -q "${args[@]}" || rc=$?
    if [[ $rc -eq 5 ]]; then
      echo "test: pytest collected no tests (exit code 5): tests/ is missing or everything was deselected" >&2
    fi
    exit $rc ;;
  reproduce)
    setup
    # no PROFILE: every page with the profile that produced it (quick for a page never run)
    prof=(); [[ -n "${PROFILE:-}" ]] && prof=(--profile "$PROFILE")
    "$BIN/prunerob" reproduce "${names[@]}" ${prof[@]+"${prof[@]}"} "${args[@]}" ;;
  ci-notebooks)
    setup
    # Every notebook with the quick profile into a temporary folder, with a result store of its own:
    # committed outputs in book/experiments (pages and store) are never touched. The folder is kept
    # for inspection when a run fails.
    out="$(mktemp -d "${TMPDIR:-/tmp}/prunerob-ci-notebooks.XXXXXX")"
    echo "ci-notebooks: executing every notebook (profile quick) into $out"
    if PRUNEROB_STORE="$out/store" "$BIN/prunerob" reproduce --profile quick --output-dir "$out" "${args[@]}"; then
      rm -rf "$out"
    else
      echo "ci-notebooks: FAILED; executed notebooks (with tracebacks) are in $out/.failed" >&2
      exit 1
    fi ;;
  clean)
    rm -rf _build book/_build .pytest_cache ;;
  help|*)
    sed -n '2,8p' "$0"
    [[ "$task" == help ]] || exit 2 ;;
esac
