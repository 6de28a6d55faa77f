"""The lines the run-control commands print (no AWS: reports built by hand)."""
from __future__ import annotations

from pathlib import Path

import pytest

from training.cloud import control, control_view
from training.cloud.stack_outputs import RunStack

RUN = RunStack(stack_name="Spotgrade", run_stack="Spotgrade-r-1", bucket="spotgrade-b", run_id="r-1",
               asg_name="grp", log_group="/g", topic_arn=None, region="us-east-1")


def report(status: dict, **fields) -> control.StatusReport:
    values = dict(billable_seconds=60, estimated_cost=0.0, unpriced_attempts=0, interruptions=0, log_tail=[],
                  elapsed_seconds=None, heartbeat_age_seconds=None)
    return control.StatusReport(run=RUN, status=status, **{**values, **fields})


@pytest.mark.parametrize("seconds, shown", [(0, "0m 00s"), (247.9, "4m 07s"), (3900, "1h 05m"), (90000, "25h 00m")])
def test_duration(seconds, shown):
    assert control_view.duration(seconds) == shown


@pytest.mark.parametrize("dollars, shown", [(0, "$0.00"), (0.0025, "$0.002500"), (1234.5, "$1,234.50")])
def test_money(dollars, shown):
    assert control_view.money(dollars) == shown


def test_status_lines_of_a_run_without_attempts():
    lines = control_view.status_lines(report({"state": "PENDING", "attempt": 0, "last_epoch": 0}))
    assert lines == ["run r-1  (stack Spotgrade-r-1, s3://spotgrade-b/runs/r-1/)",
                     "state:      PENDING  (attempt 0, 0 interruptions)",
                     "epochs:     0 of ? completed",
                     "validation: -",
                     "cost:       $0.00 so far, 60 billable seconds"]


def test_status_lines_of_a_run_whose_stack_is_destroyed():
    gone = RunStack(stack_name="Spotgrade", run_stack=None, bucket="spotgrade-b", run_id="r-1", asg_name=None,
                    log_group="/g", topic_arn=None, region="us-east-1")
    lines = control_view.status_lines(control.StatusReport(
        run=gone, status={"state": "SUCCEEDED"}, billable_seconds=60, estimated_cost=0.0, unpriced_attempts=0,
        interruptions=0, log_tail=[], elapsed_seconds=None, heartbeat_age_seconds=None))
    assert lines[0] == "run r-1  (its stack Spotgrade-r-1 is not deployed, s3://spotgrade-b/runs/r-1/)"


def test_status_lines_of_a_running_run():
    status = {"state": "RUNNING", "attempt": 2, "last_epoch": 7, "epochs": 30, "heartbeat_at": "2026-03-01T11:59:00Z",
              "validation": {"accuracy": 0.5123, "loss": 1.2, "weighted_f1": 0.498},
              "attempts": [{"instance_type": "g5.xlarge", "lifecycle": "spot", "availability_zone": "us-east-1a",
                            "instance_id": "i-1"}]}
    lines = control_view.status_lines(report(status, interruptions=1, elapsed_seconds=3700, heartbeat_age_seconds=60,
                                             unpriced_attempts=1, estimated_cost=0.45, log_tail=["a", "b"]))
    assert lines[1:] == ["state:      RUNNING  (attempt 2, 1 interruption)",
                         "instance:   g5.xlarge spot in us-east-1a (i-1)",
                         "elapsed:    1h 01m since the first attempt started",
                         "epochs:     7 of 30 completed",
                         "validation: accuracy 0.512  weighted_f1 0.498",
                         "heartbeat:  2026-03-01T11:59:00Z (1m 00s ago)",
                         "cost:       $0.45 (+1 attempt(s) without a known price) so far, 60 billable seconds",
                         "latest log lines:", "  a", "  b"]


def test_a_retrying_run_shows_its_recorded_log_tail_not_the_latest_lines():
    status = {"state": "RETRYING", "error": None, "reason": "step 'training': boom", "log_tail": ["x", "y"]}
    lines = control_view.status_lines(report(status, log_tail=["latest"]))
    assert lines[-4:] == ["reason:     step 'training': boom", "last lines of its log:", "  x", "  y"]


def test_pull_lines(tmp_path):
    target = tmp_path / "r-1"
    pulled = control.Pulled(RUN, target, {target / "model.keras": 1234567, target / "sub" / "a.png": 3},
                            {"test": {"accuracy": 0.61}, "validation": {}})
    assert control_view.pull_lines(pulled) == [f"downloaded 2 files to {target}/", "  model.keras  (1,234,567 bytes)",
                                               f"  {Path('sub/a.png')}  (3 bytes)", "test:       accuracy 0.610",
                                               "validation: -"]
    assert len(control_view.pull_lines(control.Pulled(RUN, target, {}, None))) == 1


def test_stop_and_resume_lines():
    assert control_view.stop_lines(control.StateChange(RUN, {}, already="SUCCEEDED")) == \
        ["run r-1 was already SUCCEEDED; group grp set to 0"]
    assert control_view.stop_lines(control.StateChange(RUN, {"state": "STOPPED"})) == [
        "run r-1: STOPPED; group grp desired capacity 0 (the instance terminates shortly)",
        "checkpoints kept under s3://spotgrade-b/scratch/r-1/checkpoints/"]
    assert control_view.resume_lines(control.StateChange(RUN, {"last_epoch": 7})) == \
        ["run r-1: resuming from epoch 7; group grp desired capacity 1"]


def test_upload_lines():
    sent = control.Uploaded(Path("loans.csv"), "s3://b/data/loans.csv", 2048, "ab" * 32, up_to_date=False)
    assert control_view.upload_lines(sent) == [
        "uploaded loans.csv (2,048 bytes, sha256 abababababab...) to s3://b/data/loans.csv",
        "deploy with:  make deploy RUN=<run-id> ARGS='-c dataUri=s3://b/data/loans.csv'"]
    kept = control.Uploaded(Path("loans.csv"), "s3://b/data/loans.csv", 2048, "ab" * 32, up_to_date=True)
    assert control_view.upload_lines(kept)[0] == "s3://b/data/loans.csv is already up to date (sha256 abababababab...)"


def test_runs_lines():
    rows = [{"run_id": "new", "state": "SUCCEEDED", "started": "2026-03-01T10:00:00Z", "ended": "",
             "instance_types": ["g5.xlarge", "g6.xlarge"], "cost": 0.45, "weighted_f1": 0.5512,
             "stack": "Spotgrade-new"},
            {"run_id": "old", "state": "-", "started": "", "ended": "", "instance_types": [], "cost": 0,
             "weighted_f1": None, "stack": None}]
    header, new, old = control_view.runs_lines(rows)
    assert header.split() == ["RUN", "STATE", "STACK", "STARTED", "ENDED", "INSTANCES", "COST", "F1(w)"]
    assert new.split() == ["new", "SUCCEEDED", "up", "2026-03-01T10:00:00Z", "-", "g5.xlarge,g6.xlarge", "$0.45",
                           "0.551"]
    assert old.split() == ["old", "-", "-", "-", "-", "-", "$0.00", "-"]
    assert len(header) == len(new) == len(old)


def test_code_line_names_the_ref_the_deployed_commit_and_the_override():
    from training.cloud.control_view import code_line

    commit = "0123456789abcdef0123456789abcdef01234567"
    assert code_line({"git_ref": "main", "git_commit": commit, "allow_unpushed_code": False}) == "main @ 0123456789ab"
    assert code_line({"git_ref": "v2", "git_commit": None}) == "v2 @ unresolved at synth"
    assert code_line({"git_ref": "main", "git_commit": commit, "allow_unpushed_code": True}).endswith(
        "(deployed with allowUnpushedCode=true)")
