#!/usr/bin/env bash
# Create or update the project's virtual environment (default .venv), idempotently.
#
#   scripts/setup.sh            # what `make book` / `make test` run first
#   PYTHON=python3.11 VENV=/tmp/venv scripts/setup.sh
#
# Order matters: torch/torchvision first (large wheels), then requirements/base.txt, then
# torchattacks WITHOUT its dependencies (its metadata pins requests~=2.25.1), then prunerob itself
# in editable mode, then the "python3" Jupyter kernel spec inside the venv (for plain papermill and
# the book's executed pages; `prunerob reproduce` starts the venv's interpreter directly anyway).
#
# A stamp file in the venv holds a hash of every input of this script; when it matches, nothing
# is reinstalled (a second run takes well under a second). Set FORCE=1 to reinstall anyway.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
STAMP="$VENV/.prunerob-setup.sha256"

want="$(cat requirements/*.txt pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [[ "${FORCE:-0}" != 1 && -x "$VENV/bin/python" && -x "$VENV/bin/prunerob" && -f "$STAMP" \
      && "$(cat "$STAMP")" == "$want" ]]; then
  echo "setup: $VENV is up to date (requirements unchanged; FORCE=1 reinstalls)"
  exit 0
fi

t0=$SECONDS
if [[ ! -x "$VENV/bin/python" ]]; then
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "setup: $PYTHON is missing or older than 3.10; set PYTHON=/path/to/python3.11" >&2
    exit 1
  fi
  echo "setup: creating $VENV with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --progress-bar off --disable-pip-version-check)

echo "setup: [1/5] torch and torchvision (requirements/torch.txt)"
"${PIP[@]}" -r requirements/torch.txt
echo "setup: [2/5] requirements/base.txt"
"${PIP[@]}" -r requirements/base.txt
echo "setup: [3/5] requirements/nodeps.txt (torchattacks, --no-deps)"
"${PIP[@]}" --no-deps -r requirements/nodeps.txt
echo "setup: [4/5] prunerob (editable, --no-deps)"
"${PIP[@]}" --no-deps -e .
echo "setup: [5/5] Jupyter kernel spec 'python3' inside $VENV"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (prunerob venv)" >/dev/null

"$VENV/bin/python" - <<'EOF'
import importlib
for mod in ("torch", "torchvision", "torchattacks", "papermill", "jupytext", "jupyter_book", "prunerob"):
    m = importlib.import_module(mod)
    print(f"setup: {mod} {getattr(m, '__version__', '')}")
EOF
echo "$want" > "$STAMP"
echo "setup: done in $((SECONDS - t0)) s"
