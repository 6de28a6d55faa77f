"""GPU check at the start of an attempt: never train on the CPU for hours by mistake."""
from __future__ import annotations

import shutil
import subprocess
from typing import Callable

from training.errors import SpotgradeError

GPU_FAMILY_PREFIXES = ("g", "p")  # g4dn, g5, g6, p3, p4d, p5, ...


class GpuUnavailableError(SpotgradeError):
    """The instance type has a GPU but TensorFlow cannot use it."""


def has_gpu(instance_type: str | None) -> bool:
    """True for the g* and p* instance families (the ones with NVIDIA GPUs)."""
    return bool(instance_type) and instance_type.split(".")[0][:1] in GPU_FAMILY_PREFIXES


def nvidia_smi() -> str | None:
    """nvidia-smi's summary, or None where it is not installed or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        result = subprocess.run([exe], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"nvidia-smi failed: {error}"
    return (result.stdout or result.stderr).strip()


def tensorflow_gpus() -> list[str]:
    import tensorflow as tf

    return [device.name for device in tf.config.list_physical_devices("GPU")]


def check_gpu(instance_type: str | None, log: Callable[[str], None], *,
              smi: Callable[[], str | None] = nvidia_smi,
              visible: Callable[[], list[str]] = tensorflow_gpus) -> list[str]:
    """Log nvidia-smi and TensorFlow's GPUs; raise GpuUnavailableError on a GPU type TensorFlow cannot use."""
    gpus = visible()
    if has_gpu(instance_type):
        log(f"nvidia-smi:\n{smi() or '(not available)'}")
    log(f"TensorFlow GPUs: {', '.join(gpus) if gpus else 'none'}")
    if has_gpu(instance_type) and not gpus:
        raise GpuUnavailableError(
            f"instance type {instance_type} has a GPU but TensorFlow sees none (driver/CUDA mismatch?): "
            "use a Deep Learning AMI with a CUDA matching tensorflow[and-cuda], or a CPU instance type"
        )
    return gpus
