#!/usr/bin/env bash
# Prepare what a GPU machine without network needs (run HERE, on the CPU machine).
#   scripts/gpu/prepare.sh core        -> .whl/ (py3.12 wheels the GPU image lacks) + .gpudata/ with MNIST and CIFAR-10
#   scripts/gpu/prepare.sh imagenette  -> .whl/ + .gpudata/ with Imagenette only
# Both folders are ignored by git (.git/info/exclude) and must be named in the device tool's
# `carry` list. Together they must stay under the 64 MiB a call may carry, hence two parts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
part="${1:-core}"
SHARED="${PRUNEROB_SHARED_DATA:-../shared/data}"
PY="${PY:-python3}"

if [[ ! -d .whl ]]; then
  plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any)
  "$PY" -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" \
      -d .whl papermill jupytext ipykernel
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" \
      -d .whl torchattacks==3.5.1
  # Drop what the GPU image already has (see the device tool's KINDS.md package list).
  for pkg in numpy pyyaml PyYAML requests urllib3 certifi idna charset_normalizer click tqdm pygments \
             packaging psutil attrs jinja2 MarkupSafe markdown_it_py mdurl python_dateutil six \
             typing_extensions pandas scipy pillow torch torchvision filelock fsspec; do
    rm -f .whl/"${pkg}"-*.whl .whl/"${pkg,,}"-*.whl
  done
fi
rm -rf .gpudata && mkdir -p .gpudata
case "$part" in
  core) cp -r "$SHARED/mnist" .gpudata/ && cp "$SHARED/cifar10-jpg.tar.gz" .gpudata/ ;;
  imagenette) cp "$SHARED/imagenette64-jpg.tar.gz" .gpudata/ ;;
  *) echo "usage: $0 core|imagenette" >&2; exit 2 ;;
esac
du -sh .whl .gpudata
