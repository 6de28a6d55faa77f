"""`train --preset`: named training settings (the model preset, epochs, patience, batch size, whether the tuned
gradient-boosting peer runs) and the one chosen when no --preset is given.

Standard library only: `train_flags` (and so synth's check of trainArgs) imports it. Explicit flags override a
preset's values (`train_flags.train_config_from_args`); `TrainConfig()` itself keeps the 2017 settings.
"""
from __future__ import annotations

from dataclasses import dataclass

from training.errors import ConfigError


@dataclass(frozen=True)
class TrainingPreset:
    """One preset: ``model`` names a ``training.model.MODEL_PRESETS`` entry (a test checks it)."""

    model: str
    epochs: int
    patience: int
    batch_size: int
    tuned_peer: bool   # False: the baselines leave out hist_gradient_boosting_tuned (a 20-configuration search)
    about: str         # what it is, for --help


PRESETS: dict[str, TrainingPreset] = {
    "tuned": TrainingPreset("tuned", 100, 8, 512, True,
                            "the best honest model: log money columns, piecewise-linear quantile bins, embeddings, "
                            "4 averaged 256,128 networks, LR on plateau, weight EMA (docs/model-card.md)"),
    "sample": TrainingPreset("reference", 30, 5, 256, False,
                             "the 2017 network without the tuned gradient-boosting search: a quick run"),
    "reference": TrainingPreset("reference", 30, 5, 256, True, "the 2017 100,60 network, dropout 0.2"),
}
DATA_DEFAULT = "tuned"     # with --data
SAMPLE_DEFAULT = "sample"  # on the built-in synthetic sample (`make train` stays quick)


def choose_preset(given: str | None, *, synthetic: bool) -> tuple[str, str]:
    """(preset name, why it was chosen): ``given`` (--preset) when set, else by the data."""
    if given is not None:
        if given not in PRESETS:
            raise ConfigError(f"unknown preset {given!r}; choose from {', '.join(PRESETS)}")
        return given, f"--preset {given}"
    if synthetic:
        return SAMPLE_DEFAULT, f"built-in synthetic sample; --preset {DATA_DEFAULT} for the full model"
    return DATA_DEFAULT, "the default with --data; --preset reference for the 2017 network"


def preset_help() -> str:
    """--preset's help: each preset with its settings, and the defaults."""
    described = "; ".join(f"{name}: {p.about} (epochs {p.epochs}, patience {p.patience}, batch {p.batch_size})"
                          for name, p in PRESETS.items())
    return (f"training settings. {described}. Default: {DATA_DEFAULT} with --data, {SAMPLE_DEFAULT} on the "
            f"synthetic sample. Flags given explicitly (--epochs, --hidden-units, ...) override the preset's")
