"""The runner's status record: attempts, billing, lost attempts and stops written out of band."""
import boto3
import pytest
from moto import mock_aws

from training.cloud.imds import InstanceInfo
from training.cloud.layout import RunLayout, read_status, write_status
from training.cloud.record import StatusRecorder, _bill
from training.cloud.run import EXIT_CONFIG, main

LAYOUT = RunLayout("spotgrade-rec", "r1")
INFO = InstanceInfo("i-1", "g5.xlarge", "us-east-1a", "us-east-1", "spot")


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=LAYOUT.bucket)
        yield client


def test_attempts_and_lost_attempt(s3):
    first = StatusRecorder(s3, LAYOUT, None)
    first.start_attempt(INFO, 0.5, epochs=10)
    first.update("RUNNING", last_epoch=3)
    first.heartbeat()
    # the instance dies without a word; the replacement closes attempt 1 as LOST
    second = StatusRecorder(s3, LAYOUT, read_status(s3, LAYOUT))
    second.start_attempt(INFO, None, epochs=None)
    status = read_status(s3, LAYOUT)
    assert status["attempt"] == 2 and status["state"] == "STARTING" and status["epochs"] == 10
    lost, current = status["attempts"]
    assert lost["end_state"] == "LOST" and lost["ended_at"] == lost["last_seen_at"]
    assert current["attempt"] == 2 and current["ended_at"] is None and current["spot_price"] is None


def test_out_of_band_stop_is_kept(s3):
    recorder = StatusRecorder(s3, LAYOUT, None)
    recorder.start_attempt(INFO, 0.36, epochs=5)
    recorder.update("RUNNING")
    remote = read_status(s3, LAYOUT)
    remote.update(state="STOPPED", reason="stopped by the watchdog: no heartbeat")
    write_status(s3, LAYOUT, remote)
    recorder.heartbeat()
    assert recorder.external_stop == "STOPPED"
    recorder.end_attempt("INTERRUPTED", reason="spot notice")
    status = read_status(s3, LAYOUT)
    assert status["state"] == "STOPPED" and status["reason"] == "stopped by the watchdog: no heartbeat"
    assert status["attempts"][0]["end_state"] == "STOPPED"


def test_billing():
    entry = {"started_at": "2024-01-01T00:00:00Z", "spot_price": 0.36}
    _bill(entry, end="2024-01-01T00:30:00Z")
    assert entry["billable_seconds"] == 1800 and entry["estimated_cost"] == pytest.approx(0.18)
    entry = {"started_at": "2024-01-01T00:00:00Z", "spot_price": None}
    _bill(entry, end="2024-01-01T00:00:10Z")
    assert entry["billable_seconds"] == 10 and entry["estimated_cost"] is None


def test_main_with_bad_settings_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SPOTGRADE_RUN_ID", raising=False)
    assert main(["--env-file", str(tmp_path / "absent.env")]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read env file") and err.count("\n") == 1
