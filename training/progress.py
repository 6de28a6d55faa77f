"""Progress bars (tqdm) on stderr, shown only when stderr is a terminal: never in tests, CI or an instance's logs.

A bar appears only once its task has run for ``DELAY_S`` seconds, so quick steps print nothing.
"""
from __future__ import annotations

import sys
from typing import Any

DELAY_S = 2.0


def enabled() -> bool:
    """Whether progress bars are shown: stderr is a terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):   # replaced or closed stderr
        return False


def bar(**options: Any):
    """A tqdm bar on stderr (``options``: tqdm's, e.g. total, desc, unit), cleared when closed; None where
    progress is not shown (``enabled``)."""
    if not enabled():
        return None
    from tqdm import tqdm

    return tqdm(file=sys.stderr, delay=DELAY_S, leave=False, dynamic_ncols=True, **options)
