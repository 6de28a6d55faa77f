"""Settings of the whole test suite."""
import os

import pytest

# `make test` runs two pytest processes on two cores: one OpenMP thread each (scikit-learn's gradient boosting;
# more threads than cores spin against each other, many times slower). training.peer_search reads it too.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _parsed_data_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands' default parsed-data cache ($XDG_CACHE_HOME/spotgrade) is a new temporary directory per test,
    never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
