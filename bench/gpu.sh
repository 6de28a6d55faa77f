#!/usr/bin/env bash
# GPU benchmark, prepared for a machine with an NVIDIA GPU (e.g. a g5/g6/p4d instance, or a lent device):
#   1. installs training/requirements-gpu.txt (tensorflow[and-cuda]) into a separate venv (.venv-gpu),
#   2. confirms TensorFlow sees the GPU (fails otherwise: nothing is measured on a CPU by mistake),
#   3. runs the train benchmark with GPU settings (mixed precision, large batch) on 1M synthetic rows,
#      then the 2017 configuration at its GPU batch size (1024) on the same rows,
#   4. prints rows/s and epoch time; results go to bench/results/train-gpu.json (the command is inside).
# Usage: bench/gpu.sh [ROWS] [BATCH] [EPOCHS]   (defaults 1000000 8192 3)
# Env: PYTHON (default python3), VENV (default .venv-gpu), SKIP_INSTALL=1 to reuse an installed venv.
set -euo pipefail

ROWS="${1:-1000000}"
BATCH="${2:-8192}"
EPOCHS="${3:-3}"
for value in "$ROWS" "$BATCH" "$EPOCHS"; do
  [[ "$value" =~ ^[1-9][0-9]*$ ]] || { echo "error: ROWS, BATCH and EPOCHS must be positive integers" >&2; exit 2; }
done
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv-gpu}"
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=2 PIP_DISABLE_PIP_VERSION_CHECK=1

if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
else
  echo "error: nvidia-smi not found: this script needs an NVIDIA GPU and its driver" >&2
  exit 1
fi

if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
  [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -r training/requirements-gpu.txt pytest
fi
PY="$VENV/bin/python"

"$PY" - <<'EOF'
import sys
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
print(f"TensorFlow {tf.__version__}, built with CUDA: {tf.test.is_built_with_cuda()}, GPUs: {gpus}")
if not gpus:
    sys.exit("error: TensorFlow sees no GPU (check the driver and the tensorflow[and-cuda] install)")
EOF

RESULTS="bench/results/gpu"
mkdir -p "$RESULTS"
"$PY" -m bench train --train-rows "$ROWS" --epochs "$EPOCHS" --batch-size "$BATCH" --mixed-precision \
  --baseline-batch-size 1024 --results-dir "$RESULTS"
mv "$RESULTS/train.json" bench/results/train-gpu.json
rmdir "$RESULTS" 2>/dev/null || true

"$PY" - <<'EOF'
import json
payload = json.load(open("bench/results/train-gpu.json"))
print("GPU:", "; ".join(payload["machine"]["gpus"]))
for row in payload["results"]:
    print(f"{row['config']:>9}: batch {row['batch_size']:>5}, {row['rows_per_s']:>12,} rows/s, "
          f"epoch {row['epoch_s']:.2f} s (first {row['first_epoch_s']:.2f} s), val weighted F1 {row['val_weighted_f1']}")
EOF
