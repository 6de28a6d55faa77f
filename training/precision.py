"""`train --precision`: the Keras dtype policy a run computes in, what ``auto`` picks on this machine, and the
trained model turned back to float32 for its predictions and its saved file.

Mixed policies keep the variables in float32 and compute in 16 bits. ``auto`` uses them only where the hardware
computes them natively: a GPU with tensor cores (compute capability 7.0 or more: float16) or a CPU with
bfloat16 instructions (AVX512_BF16 or AMX); elsewhere a 16-bit policy is emulated and slower than float32.
Standard library only at import (the flags import it).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    import keras

CHOICES = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")   # /proc/cpuinfo flags of native bfloat16 arithmetic
TENSOR_CORES = (7, 0)                          # the first GPU compute capability with float16 tensor cores


def resolve(precision: str, *, cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, str]:
    """(the Keras policy, why) for a --precision setting; ``auto`` looks at the visible GPUs and the CPU."""
    if precision != "auto":
        return precision, "--precision"
    gpus = _gpu_capabilities()
    if gpus:
        if all(c >= TENSOR_CORES for c in gpus):
            return "mixed_float16", "auto: every visible GPU has float16 tensor cores"
        return "float32", "auto: a visible GPU has no float16 tensor cores"
    flags = _cpu_flags(cpuinfo)
    native = [f for f in CPU_BF16_FLAGS if f in flags]
    if native:
        return "mixed_bfloat16", f"auto: no GPU; the CPU computes bfloat16 natively ({native[0]})"
    return "float32", "auto: no GPU, and the CPU has no bfloat16 instructions"


def _gpu_capabilities() -> list[tuple[int, int]]:
    import tensorflow as tf

    return [tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability") or (0, 0))
            for gpu in tf.config.list_physical_devices("GPU")]


def _cpu_flags(cpuinfo: Path) -> set[str]:
    """The first processor's flags (none where the file is absent, as on macOS)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def to_float32(models: Iterable[keras.Model]) -> None:
    """Every layer of ``models`` (keras Models sharing layers) computes in float32 from now on: the weights
    are float32 under every policy, so the trained model predicts, and is saved, as a float32 model that
    computes the same on any machine (a saved mixed policy would make a CPU without 16-bit arithmetic
    emulate it)."""
    for model in models:
        for layer in [model, *model.layers]:
            if layer.dtype_policy.name.startswith("mixed_"):
                layer.dtype_policy = "float32"
        # the functions Keras traced under the old policy: traced again on their next use
        model.train_function = model.test_function = model.predict_function = None
