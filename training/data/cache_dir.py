"""Where the parsed-data cache (:mod:`training.data.cache`) lives: the default directory, the user's choice, the
commands' ``--cache-dir``/``--no-cache`` flags, and the setting a load uses. Standard library only (the flags are
parsed before anything heavy is imported).

The default is ``$XDG_CACHE_HOME/spotgrade``, else ``~/.cache/spotgrade``. A load uses the cache only inside
:func:`using_cache` (the commands and ``train`` set it): a plain :func:`~training.data.load_loans` call writes
nothing outside its own temporary directory.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "spotgrade"


@dataclass(frozen=True)
class CacheSetting:
    directory: Path                     # the cache directory (entries under its parsed/ folder)
    log: Callable[[str], None] = print  # one line per hit, unreadable entry or unusable directory


_ACTIVE: ContextVar[CacheSetting | None] = ContextVar("spotgrade_parsed_data_cache", default=None)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/spotgrade``, else ``~/.cache/spotgrade``."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / APP_NAME


def add_cache_arguments(p: argparse.ArgumentParser) -> None:
    """``--cache-dir DIR`` and ``--no-cache`` (one or the other)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--cache-dir", metavar="DIR",
                       help="keep the parsed columns of each data file there, so a later read of the same file "
                            "is free (default $XDG_CACHE_HOME/spotgrade, else ~/.cache/spotgrade)")
    group.add_argument("--no-cache", action="store_true", help="read and parse the data files without the cache")


def chosen_cache_dir(args: argparse.Namespace) -> Path | None:
    """The cache directory the parsed flags name: ``--cache-dir``, else the default; None with ``--no-cache``."""
    if getattr(args, "no_cache", False):
        return None
    given = getattr(args, "cache_dir", None)
    return Path(given).expanduser() if given else default_cache_dir()


@contextmanager
def using_cache(directory: Path | str | None, log: Callable[[str], None] = print) -> Iterator[None]:
    """Loads inside use the cache in ``directory`` (None: no cache), logging through ``log``."""
    token = _ACTIVE.set(CacheSetting(Path(directory), log) if directory is not None else None)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def active_cache() -> CacheSetting | None:
    """The cache setting of the current load, or None."""
    return _ACTIVE.get()
