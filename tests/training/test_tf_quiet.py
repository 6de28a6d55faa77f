"""training.tf_quiet: TensorFlow's start-up lines (CPU and CUDA builds) are dropped, every other line is kept."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training import tf_quiet

ROOT = Path(__file__).resolve().parents[2]

NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796025374.028483    3994 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To turn "
    "them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796025379.054400    4073 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
    # the CUDA build
    "E0000 00:00:1710000000.123456    1234 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to register "
    "factory for plugin cuDNN when one has already been registered",
    "E0000 00:00:1710000000.123999    1234 cuda_blas.cc:1418] Unable to register cuBLAS factory: Attempting to "
    "register factory for plugin cuBLAS when one has already been registered",
    "2024-03-11 12:00:00.123456: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:479] Unable to register "
    "cuFFT factory: Attempting to register factory for plugin cuFFT when one has already been registered",
    "W0000 00:00:1745000000.000001    1234 computation_placer.cc:177] computation placer already registered. Please "
    "check linkage and avoid linking the same target more than once.",
    "2024-03-11 12:00:01.000001: W tensorflow/compiler/tf2tensorrt/utils/py_utils.cc:38] TF-TRT Warning: Could not "
    "find TensorRT",
    "2024-03-11 12:00:00.5: I tensorflow/core/util/port.cc:113] oneDNN custom operations are on.",
]
REAL = [
    "/home/me/x.py:3: UserWarning: the project's own warning",
    "W0000 00:00:1745000000.000001    1234 op_level_cost_estimator.cc:699] Error in PredictCost() for the op",
    "E0000 00:00:1745000000.000001    1234 cuda_driver.cc:152] failed call to cuInit: INTERNAL: CUDA error",
    "error: data.csv: file not found",
    "oneDNN custom operations are on",  # a project line quoting the text, not TensorFlow's log format
]


@pytest.mark.parametrize("line", NOISE)
def test_start_up_lines_are_noise(line):
    assert tf_quiet.is_startup_noise(line) and tf_quiet.is_startup_noise(line + "\n")


@pytest.mark.parametrize("line", REAL)
def test_other_lines_are_kept(line):
    assert not tf_quiet.is_startup_noise(line)


def test_without_noise_keeps_the_other_lines_in_order():
    text = "".join(f"{line}\n" for pair in zip(NOISE, REAL) for line in pair)
    assert tf_quiet.without_noise(text) == "".join(f"{line}\n" for line in REAL)


def test_descriptor_2_is_filtered_and_restored(capfd):
    with tf_quiet._stderr_filtered():
        os.write(2, f"{NOISE[0]}\n{REAL[0]}\n{NOISE[4]}\n".encode())
    os.write(2, b"after\n")
    assert capfd.readouterr().err == f"{REAL[0]}\nafter\n"


def test_loading_tensorflow_prints_nothing():
    """The real import, in a fresh interpreter, without TF_CPP_MIN_LOG_LEVEL: stderr stays empty."""
    code = ("import sys; from training.tf_quiet import load_tensorflow; load_tensorflow(); load_tensorflow(); "
            "assert 'tensorflow' in sys.modules and 'keras' in sys.modules")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode, done.stderr) == (0, "")
