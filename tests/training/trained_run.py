"""One short training run on the synthetic sample, shared (session scope) by the training tests.

Registered in tests/training/conftest.py, so every training test module shares the one run.
"""
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SAMPLE_ROWS = 3000
EPOCHS = 8


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """(TrainResult, log lines) of a 3000-row synthetic run with the default model."""
    from training.train import TrainConfig, train

    lines: list[str] = []
    config = TrainConfig(sample=SAMPLE_ROWS, epochs=EPOCHS, patience=3, run_id="shared-run",
                         output_dir=Path(tmp_path_factory.mktemp("outputs")))
    return train(config, log=lines.append), lines
