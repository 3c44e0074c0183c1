#!/usr/bin/env bash
# Run ON the GPU machine (through the device tool), from the repository root:
#   bash scripts/gpu/run_paper.sh core        # every notebook on MNIST + CIFAR-10, profile paper
#   bash scripts/gpu/run_paper.sh imagenette  # score_vit on Imagenette, profile paper
# carry: [".whl", ".gpudata"] (made by scripts/gpu/prepare.sh PART). Results land in $OUT
# (book/experiments layout), plus the benchmark printouts in $OUT/benchmarks.txt.
# Tested on the CPU with PROFILE=quick OUT=/tmp/x bash scripts/gpu/run_paper.sh core.
set -euo pipefail
part="${1:-core}"
PROFILE="${PROFILE:-paper}"
OUT="${OUT:?set OUT to a writable folder}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
if [[ -d .whl ]] && ! python3 -c "import papermill, jupytext, torchattacks" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
export PRUNEROB_SHARED_DATA="${PRUNEROB_SHARED_DATA:-$PWD/.gpudata}"
export PRUNEROB_CACHE="${PRUNEROB_CACHE:-/tmp/prunerob-cache}"
mkdir -p "$OUT"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
case "$part" in
  core)
    # shellcheck disable=SC2086
    ( time python3 -m prunerob reproduce --profile "$PROFILE" --output-dir "$OUT/experiments" \
        ${NAMES:-risk_vs_keep magnitude_mlp magnitude_cnn depth algorithm1 score_vit pareto} \
        ) 2>&1 | tee "$OUT/reproduce.log" || true
    if [[ "${BENCH:-1}" == 1 ]]; then
      python3 benchmarks/sweep.py --device auto 2>&1 | tee "$OUT/benchmarks.txt" || true
    fi ;;
  imagenette)
    ( time python3 -m prunerob reproduce --profile "$PROFILE" --output-dir "$OUT/experiments_imagenette" \
        score_vit -p datasets '["imagenette"]' ) 2>&1 | tee "$OUT/reproduce.log" ;;
  *) echo "usage: $0 core|imagenette" >&2; exit 2 ;;
esac
