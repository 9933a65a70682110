#!/usr/bin/env bash
# One prepared run for the lent GPU machine (Python 3.12 with JAX and PyTorch, no TensorFlow or
# Keras, no network): installs the product from wheels carried beside it, then measures GANomaly's
# training speed per backend through the product's own training path.
#
# Here, once:  bash scripts/gpu_check.sh --wheels   (downloads the Python 3.12 wheels into .gpu_wheels/)
# On the GPU:  the device tool's run, carrying .gpu_wheels:  bash scripts/gpu_check.sh
# Results go to $OUT (benchmarks.md and benchmarks/train_steps_gpu.json), default /tmp/gpu-check.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=.gpu_wheels
# numpy, scipy and ml_dtypes come with JAX on the GPU machine; TensorFlow is not installed there.
PACKAGES=(keras namex optree pluggy click rich pyyaml pydantic-settings pillow scikit-learn matplotlib pandas)

if [ "${1:-}" = "--wheels" ]; then
    mkdir -p "$WHEELS"
    python3 -m pip download -q -d "$WHEELS" --python-version 3.12 --only-binary=:all: \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
        "${PACKAGES[@]}" setuptools wheel
    rm -f "$WHEELS"/numpy-* "$WHEELS"/scipy-* "$WHEELS"/ml_dtypes-*
    du -sh "$WHEELS"
    exit 0
fi

export PIP_BREAK_SYSTEM_PACKAGES=1
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
nvidia-smi -L || true
python3 -m pip install -q --no-index --find-links "$WHEELS" "${PACKAGES[@]}"
# The entry points register the detectors, so the package is installed (not only put on the path).
python3 -m pip install -q --no-index --find-links "$WHEELS" --no-deps -e .
python3 -c "import jax, torch; print('jax', jax.__version__, jax.devices(), '| torch', torch.__version__, torch.cuda.is_available())"
KERAS_BACKEND=jax python3 -m benchmarks train --backends jax torch --steps "${STEPS:-500}" \
    --docs "$OUT/benchmarks.md" 2>&1 | tee "$OUT/train.log"
