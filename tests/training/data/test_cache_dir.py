"""training.data.cache_dir: the default directory, the flags, the setting of a load."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from training.data.cache_dir import active_cache, add_cache_arguments, chosen_cache_dir, default_cache_dir, using_cache


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="p")
    add_cache_arguments(parser)
    return parser.parse_args(list(argv))


def test_default_is_xdg_cache_home_else_home_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "spotgrade"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "spotgrade"


def test_flags_choose_the_directory_or_none(tmp_path: Path) -> None:
    assert chosen_cache_dir(_parse()) == default_cache_dir()
    assert chosen_cache_dir(_parse("--cache-dir", str(tmp_path / "c"))) == tmp_path / "c"
    assert chosen_cache_dir(_parse("--no-cache")) is None
    assert chosen_cache_dir(argparse.Namespace()) == default_cache_dir()   # a command without the flags


def test_cache_dir_and_no_cache_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse("--cache-dir", "c", "--no-cache")
    assert "argument --no-cache: not allowed with argument --cache-dir" in capsys.readouterr().err


def test_using_cache_sets_the_load_setting_and_restores_it(tmp_path: Path) -> None:
    assert active_cache() is None
    lines: list[str] = []
    with using_cache(tmp_path, log=lines.append):
        assert active_cache().directory == tmp_path and active_cache().log == lines.append
        with using_cache(None):
            assert active_cache() is None
        assert active_cache().directory == tmp_path
    assert active_cache() is None
