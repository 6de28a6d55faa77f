"""The run's S3 layout and status record, against moto."""
import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from training.cloud import layout as L
from training.errors import ConfigError

BUCKET = "spotgrade-test"


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_keys():
    lay = L.RunLayout(BUCKET, "run-1")
    assert lay.prefix == "runs/run-1/"
    assert lay.status_key == "runs/run-1/status.json"
    assert lay.checkpoints_prefix == "runs/run-1/checkpoints/"
    assert lay.artifacts_prefix == "runs/run-1/artifacts/"
    assert lay.logs_prefix == "runs/run-1/logs/"
    assert lay.artifact_key("model.keras") == "runs/run-1/artifacts/model.keras"
    assert lay.checkpoint_key("chkpt/a.weights.h5") == "runs/run-1/checkpoints/chkpt/a.weights.h5"
    assert lay.log_key(1) == "runs/run-1/logs/attempt-0001.log"
    assert lay.log_key(12) == "runs/run-1/logs/attempt-0012.log"
    assert lay.log_stream(3) == "run-1/attempt-0003"
    assert lay.uri(lay.status_key) == "s3://spotgrade-test/runs/run-1/status.json"
    assert L.RunLayout.from_key(BUCKET, "runs/run-1/logs/attempt-0001.log") == lay


@pytest.mark.parametrize("run_id", ["", "-x", "a/b", "a b", "x" * 64, "ä", "../up"])
def test_bad_run_id(run_id):
    with pytest.raises(ConfigError, match="run id"):
        L.RunLayout(BUCKET, run_id)


@pytest.mark.parametrize("name", ["", "../x", "a/../b", "a//b"])
def test_bad_relative_names(name):
    with pytest.raises(ConfigError):
        L.RunLayout(BUCKET, "r").artifact_key(name)


def test_bad_attempt_and_bucket():
    with pytest.raises(ConfigError, match="attempt"):
        L.RunLayout(BUCKET, "r").log_key(0)
    with pytest.raises(ConfigError, match="bucket"):
        L.RunLayout("Bad_Bucket", "r")
    with pytest.raises(ConfigError):
        L.RunLayout.from_key(BUCKET, "data/x.csv")


def test_status_round_trip(s3):
    lay = L.RunLayout(BUCKET, "r1")
    assert L.read_status(s3, lay) is None
    status = L.new_status("r1", epochs=5)
    assert set(status) >= {"run_id", "state", "attempt", "attempts", "last_epoch", "epochs",
                           "heartbeat_at", "updated_at", "error", "validation", "reason"}
    status["state"] = "RUNNING"
    status["updated_at"] = "1999-01-01T00:00:00Z"
    L.write_status(s3, lay, status)
    got = L.read_status(s3, lay)
    assert got["state"] == "RUNNING" and got["epochs"] == 5
    assert got["updated_at"] != "1999-01-01T00:00:00Z"
    assert L.parse_time(got["updated_at"]).tzinfo is not None
    head = s3.head_object(Bucket=BUCKET, Key=lay.status_key)
    assert head["ContentType"] == "application/json"
    # whole valid JSON object in one put
    raw = s3.get_object(Bucket=BUCKET, Key=lay.status_key)["Body"].read()
    assert json.loads(raw)["run_id"] == "r1"


def test_write_status_rejects_unknown_state(s3):
    with pytest.raises(ValueError, match="state"):
        L.write_status(s3, L.RunLayout(BUCKET, "r1"), {"state": "DONE"})
    assert L.read_status(s3, L.RunLayout(BUCKET, "r1")) is None


def test_states():
    assert L.TERMINAL_STATES == {"SUCCEEDED", "FAILED", "STOPPED"}
    assert L.TERMINAL_STATES < set(L.STATES)
    assert len(L.STATES) == 6


def test_list_run_ids(s3):
    for run_id in ("b-run", "a-run"):
        L.write_status(s3, L.RunLayout(BUCKET, run_id), {"state": "STARTING"})
    s3.put_object(Bucket=BUCKET, Key="runs/c-run/checkpoints/x", Body=b"1")
    s3.put_object(Bucket=BUCKET, Key="data/other.csv", Body=b"1")
    assert L.list_run_ids(s3, BUCKET) == ["a-run", "b-run", "c-run"]


def test_layout_imports_only_stdlib_and_boto3(tmp_path):
    """Deployed alone as the watchdog Lambda's module: must import without the training package."""
    src = Path(L.__file__)
    (tmp_path / "layout.py").write_text(src.read_text())
    code = (
        "import sys, layout\n"
        "assert 'training' not in sys.modules\n"
        "heavy = {'pandas', 'tensorflow', 'keras', 'numpy'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "try:\n    layout.RunLayout('b-1', '../x')\nexcept ValueError as e:\n    print('ok', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok run id")


def test_package_import_is_light():
    code = "import sys, training.cloud, training.cloud.layout\nprint(sorted({'pandas','tensorflow','keras'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
