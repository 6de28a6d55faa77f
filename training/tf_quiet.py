"""Import TensorFlow and Keras once, without their start-up lines on stderr.

TensorFlow's C++ libraries print while they load, before `TF_CPP_MIN_LOG_LEVEL` is read (abseil's "All log
messages before absl::InitializeLog()" line, oneDNN, the CPU instructions; on the CUDA build the cuDNN, cuFFT
and cuBLAS "Unable to register ... factory" lines, "computation placer already registered", TF-TRT). They go to
file descriptor 2, so `load_tensorflow` points descriptor 2 at a temporary file during the import, then writes
back every captured line that is not such noise: real warnings (the project's, Python's) still reach stderr.

    from training.tf_quiet import load_tensorflow
    load_tensorflow()           # after the arguments are checked, before importing modules that need Keras
    from training.train import train
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import Iterator

# A glog/abseil line: "I0000 00:00:1796025374.028483    3994 port.cc:153] ..." or the older
# "2024-03-11 12:00:00.123456: I tensorflow/core/util/port.cc:113] ...".
_LOG_PREFIX = r"(?:[IWEF]\d{4} [\d:.]+\s+\d+ |\d{4}-\d\d-\d\d [\d:.]+: [IWEF] )\S+:\d+\] "
_NOISE_MESSAGES = (
    r"oneDNN custom operations are on",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"Unable to register cu(?:DNN|FFT|BLAS) factory",
    r"computation placer already registered",
    r"TF-TRT Warning",
    r"Could not find cuda drivers on your machine",
    r"successful NUMA node read from SysFS had negative value",
    r"Unable to register CUDA",  # the PJRT plugin's variant of the factory lines
)
_NOISE = re.compile(
    rf"^(?:{_LOG_PREFIX}(?:{'|'.join(_NOISE_MESSAGES)})"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.)"
)

_loaded = False


def is_startup_noise(line: str) -> bool:
    """Whether a stderr line is one of TensorFlow's or abseil's start-up lines (not a real warning)."""
    return _NOISE.match(line.rstrip("\r\n")) is not None


def without_noise(text: str) -> str:
    """`text` without its start-up lines (each kept line keeps its line end)."""
    return "".join(line for line in text.splitlines(keepends=True) if not is_startup_noise(line))


def load_tensorflow() -> None:
    """Import tensorflow and keras (once; later calls return at once), start-up lines filtered from stderr."""
    global _loaded
    if _loaded:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the lines printed after abseil starts (device set-up)
    with _stderr_filtered():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    _loaded = True


@contextlib.contextmanager
def _stderr_filtered() -> Iterator[None]:
    """Capture file descriptor 2 in a temporary file; on the way out, restore it and write back the real lines."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (a daemon): nothing to filter
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = without_noise(captured.read().decode("utf-8", errors="replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()
