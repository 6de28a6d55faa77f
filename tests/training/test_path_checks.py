"""training.path_checks: inputs that exist, and outputs refused when they exist unless `force`."""
from pathlib import Path

import pytest

from training import path_checks as pc
from training.errors import ConfigError, DataError


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x\n")
    return path


def test_data_paths_globs_and_s3(tmp_path):
    data = _touch(tmp_path / "a.csv")
    pc.check_data([str(data), str(tmp_path / "*.csv"), str(tmp_path), "s3://bucket/not/checked.csv"])
    with pytest.raises(DataError, match="b.csv: file not found"):
        pc.check_data([str(data), str(tmp_path / "b.csv")])
    with pytest.raises(DataError, match="no files match"):
        pc.check_data([str(tmp_path / "*.zip")])


def test_model_must_be_a_file(tmp_path):
    model = _touch(tmp_path / "run" / "model.keras")
    pc.check_model(str(model))
    with pytest.raises(DataError, match="is a run directory; give the model file in it"):
        pc.check_model(str(model.parent))
    with pytest.raises(DataError, match="model file not found"):
        pc.check_model(str(tmp_path / "none.keras"))


def test_run_dir_is_refused_unless_force(tmp_path):
    assert pc.check_run_dir(str(tmp_path / "new" / "outputs"), "r1", force=False) is None
    assert pc.check_run_dir(str(tmp_path), None, force=False) is None  # a new id names a new directory
    run = _touch(tmp_path / "r1" / "run.json").parent
    with pytest.raises(ConfigError, match="r1: a run with this id exists; give another --run-id, or --force"):
        pc.check_run_dir(str(tmp_path), "r1", force=False)
    assert pc.check_run_dir(str(tmp_path), "r1", force=True) == run
    pc.replace_run_dir(run)
    assert not run.exists()


def test_force_replaces_only_what_looks_like_a_run(tmp_path):
    (tmp_path / "empty").mkdir()
    assert pc.check_run_dir(str(tmp_path), "empty", force=True) == tmp_path / "empty"
    _touch(tmp_path / "half" / "data" / "synthetic.csv")  # a run that failed after writing its sample
    assert pc.check_run_dir(str(tmp_path), "half", force=True) == tmp_path / "half"
    _touch(tmp_path / "mine" / "thesis.tex")
    with pytest.raises(ConfigError, match="holds no run"):
        pc.check_run_dir(str(tmp_path), "mine", force=True)
    _touch(tmp_path / "afile")
    with pytest.raises(ConfigError, match="not a run directory"):
        pc.check_run_dir(str(tmp_path), "afile", force=True)


def test_output_dir(tmp_path):
    pc.check_output_dir(str(tmp_path / "a" / "b"), force=False)  # created later, parents too
    afile = _touch(tmp_path / "afile")
    for output, message in [(afile, "is a file"), (afile / "sub", "lies under the file")]:
        with pytest.raises(ConfigError, match=message):
            pc.check_output_dir(str(output), force=True)
    _touch(tmp_path / "ev" / "metrics.json")
    with pytest.raises(ConfigError, match="metrics.json: exists; give another --output directory, or --force"):
        pc.check_output_dir(str(tmp_path / "ev"), force=False)
    pc.check_output_dir(str(tmp_path / "ev"), force=True)


def test_output_file(tmp_path):
    out = tmp_path / "p.csv"
    pc.check_output_file(str(out), force=False, also=[pc.dropped_rows_path(out)])
    for output, message in [(f"{tmp_path}/", "is a directory"), (str(tmp_path), "is a directory"),
                            (str(tmp_path / "no" / "p.csv"), "does not exist; create the directory first")]:
        with pytest.raises(ConfigError, match=message):
            pc.check_output_file(output, force=True)
    _touch(pc.dropped_rows_path(out))
    with pytest.raises(ConfigError, match=r"p\.dropped\.csv: exists"):
        pc.check_output_file(str(out), force=False, also=[pc.dropped_rows_path(out)])
    pc.check_output_file(str(out), force=True, also=[pc.dropped_rows_path(out)])
    data = _touch(tmp_path / "data.csv")
    with pytest.raises(ConfigError, match="is an input file"):
        pc.check_output_file(str(data), force=True, inputs=[str(data)])


def test_dropped_rows_path():
    assert pc.dropped_rows_path("out/p.csv") == Path("out/p.dropped.csv")
    assert pc.dropped_rows_path("p.parquet") == Path("p.dropped.csv")
