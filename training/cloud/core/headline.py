"""The headline metrics of a run: which keys, and how one line shows them (status, pull, runs, notifications)."""
from __future__ import annotations

from typing import Any, Mapping, Optional

#: metrics.json's test block keys a run is summarised by (the runner's SUCCEEDED notification, `pull`).
HEADLINE_KEYS = ("accuracy", "weighted_f1", "macro_f1")
#: what a line may show: the headline, and the validation figures an epoch reports.
LINE_KEYS = HEADLINE_KEYS + ("val_accuracy", "val_loss")


def headline(metrics: Optional[Mapping[str, Any]]) -> dict:
    """The headline keys present in one block of metrics (e.g. metrics.json's "test")."""
    return {key: metrics[key] for key in HEADLINE_KEYS if metrics and key in metrics}


def metrics_line(metrics: Optional[Mapping[str, Any]], *, digits: int = 3, separator: str = "  ") -> str:
    """`accuracy 0.912  weighted_f1 0.905 ...` for the numeric LINE_KEYS present; "-" where none."""
    parts = [f"{key} {metrics[key]:.{digits}f}" for key in LINE_KEYS
             if metrics and isinstance(metrics.get(key), (int, float))]
    return separator.join(parts) or "-"
