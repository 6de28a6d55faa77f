"""run.json: JSON writing, the config as plain values, versions, devices, git commit, key order."""
import json
import time
from datetime import datetime, timezone
from pathlib import Path

from training.data import LoadedData, SourceFile
from training.features import FillValues, get_feature_set
from training.model import ModelConfig
from training.run_record import (
    DATA_NOTE,
    SYNTHETIC_NOTE,
    config_dict,
    devices,
    git_commit,
    run_info,
    versions,
    write_json,
)
from training.train import TrainConfig

RUN_JSON_KEYS = ["run_id", "synthetic", "note", "config", "precision", "feature_set", "data", "fill", "audit",
                 "baseline_search", "epochs_trained", "best_epoch", "history", "versions", "devices", "git_commit",
                 "started_at", "finished_at", "wall_time_s"]


def test_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    assert write_json({"b": 1, "a": Path("/x")}, path) == path
    assert path.read_text() == '{\n  "b": 1,\n  "a": "/x"\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_config_dict_is_plain_json():
    config = TrainConfig(output_dir=Path("/tmp/out"), model=ModelConfig(hidden_units=(8, 4)))
    values = config_dict(config)
    assert values["output_dir"] == "/tmp/out" and values["model"]["hidden_units"] == [8, 4]
    assert json.loads(json.dumps(values))["model"]["hidden_units"] == [8, 4]  # JSON-serialisable
    assert values["cache_dir"] is None
    assert config_dict(TrainConfig(cache_dir=Path("/tmp/cache")))["cache_dir"] == "/tmp/cache"


def test_versions_devices_and_commit():
    found = versions()
    assert found["python"] and found["numpy"] and "keras" in found
    assert any("CPU" in name for name in devices())
    commit = git_commit()
    assert commit is None or len(commit) == 40


def test_run_info_keys_notes_and_data():
    loaded = LoadedData(frame=None, files=[SourceFile("loans.csv", "ab" * 32, 10, 120)], dropped={"bad": 2},
                        rows_read=120)
    common = dict(run_id="r1", feature_set=get_feature_set("application"), loaded=loaded, rows_used=118,
                  fill=FillValues(values={"dti": 1.0}, rules={}), values_filled={"dti": 3}, audit={},
                  history={"loss": [1.0]}, epochs_trained=1, best_epoch=None, started=time.monotonic(),
                  started_at=datetime.now(timezone.utc))
    info = run_info(config=TrainConfig(), **common)
    assert list(info) == RUN_JSON_KEYS
    assert info["synthetic"] is True and info["note"] == SYNTHETIC_NOTE
    assert info["data"] == {"files": [{"uri": "loans.csv", "sha256": "ab" * 32, "bytes": 10, "rows": 120}],
                            "rows_read": 120, "rows_dropped": {"bad": 2}, "repeated_ids": 0, "absent_columns": {},
                            "rows_used": 118, "sample": None}
    assert info["fill"]["values_filled"] == {"dti": 3} and info["wall_time_s"] >= 0
    real = run_info(config=TrainConfig(data=["loans.csv"]), **common)
    assert real["synthetic"] is False and real["note"] == DATA_NOTE
    assert info["baseline_search"] == {}
    assert info["precision"] == {"policy": "float32", "why": "--precision"}   # the default's
    search = {"hist_gradient_boosting_tuned": {"budget": {"configurations": 20}}}
    assert run_info(config=TrainConfig(), baseline_search=search, **common)["baseline_search"] == search


def test_dropped_rows_are_one_line_with_the_reasons_in_run_json():
    from training.run_record import dropped_line

    assert dropped_line({}) is None
    assert dropped_line({"malformed row": 2, "grade missing": 1200}) == \
        "dropped 1,202 rows: 1,200 grade missing, 2 malformed row"
    many = {f"unparseable c{i}": i + 1 for i in range(5)}
    assert dropped_line(many) == ("dropped 15 rows: 5 unparseable c4, 4 unparseable c3, 3 unparseable c2 and 2 more "
                                  "reasons; all in run.json (data.rows_dropped)")
