#!/usr/bin/env bash
# The result store's promise, checked on a fresh clone: with an EMPTY checkpoint cache and a comment
# added to the rendering code, `prunerob reproduce --force` (each page with the profile that produced
# it) re-executes every committed page from the stored units, and every committed table comes out
# byte-identical. Prints the wall time and the tables that differ (none expected).
#
#   scripts/render_check.sh [CLONE_DIR]   (default: ../render-check beside this checkout, so that the
#                                         shared data folder ../shared resolves; uses this checkout's venv)
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dst="${1:-$src/../render-check}"
rm -rf "$dst"
git clone -q "$src" "$dst"
cd "$dst"
echo "# a rendering-only change" >> prunerob/render/plotting.py
export PRUNEROB_CACHE="$(mktemp -d)" HF_HUB_OFFLINE=1
before="$(mktemp)"; find book/experiments/results -name '*.csv' | sort | xargs sha256sum > "$before"
PYTHONPATH="$dst" "$src/.venv/bin/python" -m prunerob reproduce --list 2>&1 | grep '\[' | cut -c1-100
start=$SECONDS
PYTHONPATH="$dst" "$src/.venv/bin/python" -m prunerob reproduce --force
n_ckpt=$(find "$PRUNEROB_CACHE/checkpoints" -name '*.safetensors' 2>/dev/null | wc -l)
echo "re-executed every committed page in $((SECONDS - start)) s (checkpoint cache was empty; models trained: $n_ckpt)"
if sha256sum --quiet -c "$before"; then echo "every committed table is byte-identical"; else echo "tables above differ"; fi
