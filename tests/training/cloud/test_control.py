"""Run control against moto: status, logs, pull, stop, resume, upload-data, runs, their one-line errors, and the
lines the commands print of what they found (control_view)."""
from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from boto3.s3.transfer import TransferConfig

from tests.training.cloud.moto_run import attempt, iso, make_run, running_status
from training.cloud import control, control_view
from training.cloud.core import billing, status_store
from training.errors import CloudError, DataError


@pytest.fixture()
def run(aws):
    return make_run(aws)


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def status_shown(run, **kwargs) -> tuple[control.StatusReport, list[str]]:
    """`status`'s report and the lines it prints."""
    report = control.status_report(run.session, **kwargs)
    return report, control_view.status_lines(report)


def log_lines(run, **kwargs) -> list[str]:
    """The lines `logs` prints."""
    return [control_view.log_line(entry) for entry in control.log_entries(run.session, **kwargs)]


def put_log(run, attempt_no: int | str, messages: list[str], start_ms: int | None = None) -> None:
    """Create a stream (an attempt's, or a name such as the bootstrap log's) holding these messages."""
    start_ms = start_ms or int(time.time() * 1000) - 60_000  # CloudWatch refuses events > 14 days old
    logs = run.client("logs")
    stream = run.layout.log_stream(attempt_no) if isinstance(attempt_no, int) else attempt_no
    logs.create_log_stream(logGroupName=run.log_group, logStreamName=stream)
    time.sleep(0.005)  # creation times (ms) that differ: the order the streams are printed in
    logs.put_log_events(logGroupName=run.log_group, logStreamName=stream,
                        logEvents=[{"timestamp": start_ms + i, "message": m} for i, m in enumerate(messages)])


# ------------------------------------------------------------------ status


def test_status_of_a_running_run(run):
    status = running_status(run.run_id, NOW)
    run.put_status(status)
    put_log(run, 1, ["epoch 6 done", "epoch 7 done"])
    result, captured = status_shown(run, now=NOW)
    started = datetime.fromisoformat(status["attempts"][0]["started_at"].replace("Z", "+00:00"))
    expected_seconds = int((NOW - started).total_seconds())
    assert result.billable_seconds == expected_seconds
    assert result.estimated_cost == pytest.approx(0.45 * expected_seconds / 3600)
    text = "\n".join(captured)
    assert "state:      RUNNING  (attempt 1, 0 interruptions)" in text
    assert "g5.xlarge spot in us-east-1a" in text
    assert "7 of 30 completed" in text and "weighted_f1 0.498" in text
    assert captured[-2:] == ["  epoch 6 done", "  epoch 7 done"]


def test_status_of_an_interrupted_run_prices_attempts_from_spot_history(run):
    status = running_status(run.run_id, NOW)
    first = attempt(1, NOW - timedelta(hours=2), NOW - timedelta(hours=1), end_state="INTERRUPTED", spot_price=None)
    status.update(state="INTERRUPTED", attempt=1, attempts=[first])
    run.put_status(status)
    result = control.status_report(run.session, now=NOW)
    assert result.interruptions == 1
    assert result.status["state"] == "INTERRUPTED"
    history = run.client("ec2").describe_spot_price_history(
        InstanceTypes=["g5.xlarge"], AvailabilityZone="us-east-1a", ProductDescriptions=["Linux/UNIX"])
    price = float(max(history["SpotPriceHistory"], key=lambda r: r["Timestamp"])["SpotPrice"])
    assert result.unpriced_attempts == 0
    assert result.estimated_cost == pytest.approx(price * 3600 / 3600)


def test_status_of_succeeded_and_failed_runs(run):
    status = running_status(run.run_id, NOW)
    status["attempts"][0].update(ended_at=iso(NOW - timedelta(minutes=30)), end_state="SUCCEEDED")
    status.update(state="SUCCEEDED", last_epoch=30)
    run.put_status(status)
    result, captured = status_shown(run, now=NOW)
    assert result.billable_seconds == 1800  # ended half an hour after starting, an hour ago
    assert any(line.startswith("elapsed:    0h 30m") or line.startswith("elapsed:    30m") for line in captured)
    status.update(state="FAILED", error="DataError: loans.csv: column grade missing")
    run.put_status(status)
    _, captured = status_shown(run, now=NOW)
    assert "error:      DataError: loans.csv: column grade missing" in captured
    assert "state:      FAILED  (attempt 1, 0 interruptions)" in captured


def test_status_of_a_failed_run_names_the_step_and_shows_its_log_tail(run):
    status = running_status(run.run_id, NOW)
    status["attempts"][0].update(ended_at=iso(NOW - timedelta(minutes=30)), end_state="FAILED")
    tail = [f"line {i}" for i in range(15)]
    status.update(state="FAILED", failed_step="runner: data download", error="no such key: s3://lc/x.csv",
                  reason="no such key: s3://lc/x.csv", log_tail=tail)
    run.put_status(status)
    _, captured = status_shown(run, now=NOW)
    assert "failed at:  runner: data download" in captured
    assert "error:      no such key: s3://lc/x.csv" in captured
    assert not any(line.startswith("reason:") for line in captured)  # the same text as the error: once
    start = captured.index("last lines of its log:")
    assert captured[start + 1:start + 11] == [f"  line {i}" for i in range(5, 15)]  # the last 10


def test_status_of_a_succeeded_run_shows_no_log_tail(run):
    status = running_status(run.run_id, NOW)
    status.update(state="SUCCEEDED", log_tail=["old line"], reason="done")
    run.put_status(status)
    _, captured = status_shown(run, now=NOW)
    assert "last lines of its log:" not in captured and "reason:     done" in captured


def test_status_before_the_run_starts_is_one_line(run):
    with pytest.raises(CloudError, match="has not started yet"):
        control.status_report(run.session)


# ------------------------------------------------------------------ logs


def test_logs_in_order_across_attempts(run):
    """Streams print in the order they were created (each instance's bootstrap log, then its attempt), not in
    name order (which would put every boot-<instance> stream after every attempt, and sort instance ids)."""
    run.put_status(dict(running_status(run.run_id, NOW), state="SUCCEEDED"))
    put_log(run, run.layout.boot_log_stream("i-0fff"), ["cloning"])
    put_log(run, 1, ["starting", "epoch 3", "interrupted"])
    put_log(run, run.layout.boot_log_stream("i-0aaa"), ["environment restored"])
    put_log(run, 2, ["resumed from epoch 4", "done"])
    captured = log_lines(run)
    assert len(captured) == 7
    assert captured == ["[boot-i-0fff] cloning",
                        "[attempt-0001] starting", "[attempt-0001] epoch 3", "[attempt-0001] interrupted",
                        "[boot-i-0aaa] environment restored",
                        "[attempt-0002] resumed from epoch 4", "[attempt-0002] done"]


def test_logs_follow_prints_new_lines_until_the_run_ends(run):
    run.put_status(running_status(run.run_id, NOW))
    put_log(run, 1, ["epoch 1"])
    def sleep(_seconds):  # meanwhile, on the instance: one more line, then success
        run.client("logs").put_log_events(logGroupName=run.log_group, logStreamName=run.layout.log_stream(1),
                                          logEvents=[{"timestamp": int(time.time() * 1000), "message": "epoch 2"}])
        run.put_status(dict(run.status(), state="SUCCEEDED"))

    captured = log_lines(run, follow=True, sleep=sleep)
    assert len(captured) == 2
    assert captured == ["[attempt-0001] epoch 1", "[attempt-0001] epoch 2"]


def test_logs_fall_back_to_s3(run):
    run.client("s3").put_object(Bucket=run.bucket, Key=run.layout.log_key(1), Body=b"line a\nline b\n")
    captured = log_lines(run)
    assert captured == ["[attempt-0001] line a", "[attempt-0001] line b"]


# ------------------------------------------------------------------ pull


def test_pull_downloads_exactly_the_artifacts(run, tmp_path):
    s3 = run.client("s3")
    metrics = {"test": {"accuracy": 0.61, "weighted_f1": 0.6, "macro_f1": 0.52}, "validation": {"accuracy": 0.6}}
    artifacts = {"model.keras": b"MODEL", "metrics.json": json.dumps(metrics).encode(), "history.png": b"PNG1",
                 "confusion_matrix.png": b"PNG2", "run.json": b"{}"}
    for name, body in artifacts.items():
        s3.put_object(Bucket=run.bucket, Key=run.layout.artifact_key(name), Body=body)
    s3.put_object(Bucket=run.bucket, Key=run.layout.checkpoint_key("chief/ckpt-1.weights.h5"), Body=b"C")
    s3.put_object(Bucket=run.bucket, Key=run.layout.log_key(1), Body=b"log")
    pulled = control.pull(run.session, dest=tmp_path)
    captured = control_view.pull_lines(pulled)
    target = tmp_path / run.run_id
    assert pulled.target == target
    assert sorted(p.name for p in target.rglob("*") if p.is_file()) == sorted(artifacts)
    assert {p.name: p.read_bytes() for p in pulled.files} == artifacts
    assert {p.name: size for p, size in pulled.files.items()} == {name: len(body) for name, body in artifacts.items()}
    assert "test:       accuracy 0.610  weighted_f1 0.600  macro_f1 0.520" in captured


def test_pull_before_artifacts_is_one_line(run, tmp_path):
    run.put_status(running_status(run.run_id, NOW))
    with pytest.raises(CloudError, match=r"no artifacts yet \(state RUNNING\)"):
        control.pull(run.session, dest=tmp_path)


# ------------------------------------------------------------------ stop


def test_stop_sets_capacity_zero_and_keeps_checkpoints(run):
    run.put_status(running_status(run.run_id, NOW))
    s3 = run.client("s3")
    s3.put_object(Bucket=run.bucket, Key=run.layout.checkpoint_key("chief/ckpt-7.weights.h5"), Body=b"W")
    change = control.stop(run.session, now=NOW)
    assert run.group()["DesiredCapacity"] == 0
    saved = run.status()
    assert saved["state"] == "STOPPED" == change.status["state"] and change.already is None
    assert "stopped by the user" in saved["reason"]
    assert saved["attempts"][-1]["end_state"] == "STOPPED"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=run.bucket, Prefix=run.layout.checkpoints_prefix)["Contents"]]
    assert keys == [run.layout.checkpoint_key("chief/ckpt-7.weights.h5")]


def test_stop_keeps_a_terminal_state(run):
    run.put_status(dict(running_status(run.run_id, NOW), state="SUCCEEDED"))
    change = control.stop(run.session)
    assert run.status()["state"] == "SUCCEEDED" and change.already == "SUCCEEDED"
    assert run.group()["DesiredCapacity"] == 0


def test_resume_after_stop_restarts_from_checkpoints(run):
    run.put_status(running_status(run.run_id, NOW))
    with pytest.raises(CloudError, match="is RUNNING: only a FAILED, HUNG, STOPPED run"):
        control.resume(run.session)
    assert run.status()["state"] == "RUNNING" and run.group()["DesiredCapacity"] == 1
    control.stop(run.session, now=NOW)
    assert run.group()["DesiredCapacity"] == 0
    change = control.resume(run.session, now=NOW + timedelta(minutes=5))
    assert run.group()["DesiredCapacity"] == 1
    saved = run.status()
    assert saved["state"] == "PENDING" == change.status["state"] and "resumed by the user" in saved["reason"]
    assert saved["resumed_at"] == iso(NOW + timedelta(minutes=5))
    assert saved["last_epoch"] == 7  # the next attempt picks up from here
    assert saved["attempts"][-1]["end_state"] == "STOPPED"  # the stopped attempt stays closed


@pytest.mark.parametrize("state", ["FAILED", "HUNG"])
def test_resume_a_failed_or_hung_run(run, state):
    """FAILED (fixed and redeployed) and HUNG runs resume too: PENDING, error cleared, failure count reset."""
    run.client("autoscaling").set_desired_capacity(AutoScalingGroupName=run.asg_name, DesiredCapacity=0)
    status = running_status(run.run_id, NOW)
    status["attempts"][0].update(ended_at=iso(NOW), end_state="CRASHED")
    status.update(state=state, error="3 attempts in a row failed", failed_step="attempts", log_tail=["x"],
                  failed_in_a_row=3)
    run.put_status(status)
    control.resume(run.session, now=NOW)
    saved = run.status()
    assert saved["state"] == "PENDING" and run.group()["DesiredCapacity"] == 1
    assert (saved["error"], saved["failed_step"], saved["log_tail"], saved["failed_in_a_row"]) == (None, None, None, 0)


@pytest.mark.parametrize("state", ["PENDING", "INTERRUPTED", "RETRYING"])
def test_resume_a_run_waiting_for_an_instance_only_sets_capacity(run, state):
    run.client("autoscaling").set_desired_capacity(AutoScalingGroupName=run.asg_name, DesiredCapacity=0)
    before = run.put_status(dict(running_status(run.run_id, NOW), state=state))
    control.resume(run.session, now=NOW)
    assert run.group()["DesiredCapacity"] == 1
    assert run.status() == before  # status.json untouched


def test_resume_refuses_a_succeeded_run(run):
    run.client("autoscaling").set_desired_capacity(AutoScalingGroupName=run.asg_name, DesiredCapacity=0)
    before = run.put_status(dict(running_status(run.run_id, NOW), state="SUCCEEDED"))
    with pytest.raises(CloudError, match="is SUCCEEDED: only"):
        control.resume(run.session)
    assert run.status() == before and run.group()["DesiredCapacity"] == 0


# ------------------------------------------------------------------ upload-data


def test_upload_data_records_sha256_and_uses_multipart(run, tmp_path):
    data = tmp_path / "loans.csv.gz"
    payload = bytes(range(256)) * (24 * 1024)  # 6 MiB
    data.write_bytes(payload)
    small_parts = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    uploaded = control.upload_data(run.session, data, transfer=small_parts)
    uri, captured = uploaded.uri, control_view.upload_lines(uploaded)
    assert not uploaded.up_to_date
    assert uri == f"s3://{run.bucket}/data/loans.csv.gz"
    head = run.client("s3").head_object(Bucket=run.bucket, Key="data/loans.csv.gz")
    assert head["Metadata"]["sha256"] == hashlib.sha256(payload).hexdigest()
    assert head["ETag"].strip('"').endswith("-2")  # a multipart upload of two parts
    assert captured[-1] == f"deploy with:  make deploy RUN=<run-id> ARGS='-c dataUri={uri}'"
    again = control.upload_data(run.session, data, transfer=small_parts)
    assert again.up_to_date and "already up to date" in control_view.upload_lines(again)[0]


def test_upload_data_missing_file(run, tmp_path):
    with pytest.raises(DataError, match="no such file"):
        control.upload_data(run.session, tmp_path / "nope.csv")


# ------------------------------------------------------------------ runs


def test_runs_newest_first_with_cost_and_f1(run):
    s3 = run.client("s3")
    from training.cloud.core import layout

    for run_id, days_ago, f1 in (("old", 3, 0.41), ("new", 1, 0.55), ("mid", 2, None)):
        here = layout.RunLayout(run.bucket, run_id)
        status = running_status(run_id, NOW - timedelta(days=days_ago))
        status["attempts"][0].update(ended_at=iso(NOW - timedelta(days=days_ago)), end_state="SUCCEEDED")
        status["state"] = "SUCCEEDED"
        status_store.StatusStore(s3, here).change(lambda _, status=status: status)
        if f1 is not None:
            s3.put_object(Bucket=run.bucket, Key=here.artifact_key("metrics.json"),
                          Body=json.dumps({"test": {"weighted_f1": f1}}).encode())
    rows = control.runs(run.session, now=NOW)
    captured = control_view.runs_lines(rows)
    # run-1: deployed (its stack is up) but not started yet, so nothing of it is in the bucket; listed all the same.
    [deployed] = [r for r in rows if r["stack"]]
    assert (deployed["run_id"], deployed["state"], deployed["stack"]) == ("run-1", "-", "Spotgrade-run-1")
    rows = [r for r in rows if not r["stack"]]
    assert [r["run_id"] for r in rows] == ["new", "mid", "old"]
    assert [r["weighted_f1"] for r in rows] == [0.55, None, 0.41]
    assert rows[0]["cost"] == pytest.approx(0.45)  # one hour at $0.45
    assert rows[0]["instance_types"] == ["g5.xlarge"]
    assert captured[0].startswith("RUN") and any(line.startswith("new ") for line in captured)


# ------------------------------------------------------------------ errors


def test_stack_not_found_is_one_line(aws):
    with pytest.raises(CloudError, match="stack 'Elsewhere' not found") as info:
        control.status_report(aws, "Elsewhere")
    assert "\n" not in str(info.value)


def test_no_credentials_is_one_line(no_aws_credentials):
    import boto3

    with pytest.raises(CloudError, match="no AWS credentials found"):
        control.status_report(boto3.Session(region_name="us-east-1"))


def test_costs_minimum_and_open_attempt():
    """Billing is lifecycle.py's now (costs.py keeps spot_price_at only); see test_lifecycle.py for more."""
    a = attempt(1, NOW - timedelta(seconds=10), spot_price=0.36)
    assert billing.billable_seconds(a, NOW) == 60
    assert billing.attempt_cost(a, NOW) == pytest.approx(0.36 * 60 / 3600)
    assert billing.billable_seconds({"started_at": None}, NOW) is None


# ------------------------------------------------------------------ several runs (issue 12)


@pytest.fixture()
def two_runs(aws):
    """Runs a and b of the same shared stack, both deployed and training (b deployed last)."""
    a = make_run(aws, run_id="a")
    time.sleep(1.1)  # CloudFormation creation times (moto: whole seconds)
    b = make_run(aws, run_id="b")
    for run, epoch in ((a, 3), (b, 9)):
        run.put_status(dict(running_status(run.run_id, NOW), last_epoch=epoch))
    return a, b


def test_every_command_takes_the_run_id(two_runs, tmp_path):
    a, b = two_runs
    assert a.bucket == b.bucket  # one bucket, the shared stack's
    reports = {r: control.status_report(a.session, run_id=r, now=NOW, log_lines=0) for r in ("a", "b")}
    assert {r: (report.run.run_stack, report.status["last_epoch"]) for r, report in reports.items()} == {
        "a": ("Spotgrade-a", 3), "b": ("Spotgrade-b", 9)}
    put_log(a, 1, ["a's line"])
    put_log(b, 1, ["b's line"])
    assert log_lines(a, run_id="a") == ["[attempt-0001] a's line"]
    assert log_lines(a, run_id="b") == ["[attempt-0001] b's line"]
    for run in (a, b):
        a.client("s3").put_object(Bucket=run.bucket, Key=run.layout.artifact_key("model.keras"),
                                  Body=run.run_id.encode())
    assert control.pull(a.session, run_id="a", dest=tmp_path).files == {tmp_path / "a" / "model.keras": 1}
    assert (tmp_path / "a" / "model.keras").read_bytes() == b"a"
    control.stop(a.session, run_id="a", now=NOW)
    assert (a.group()["DesiredCapacity"], a.status()["state"]) == (0, "STOPPED")
    assert (b.group()["DesiredCapacity"], b.status()["state"]) == (1, "RUNNING")  # b untouched
    control.resume(a.session, run_id="a", now=NOW)
    assert (a.group()["DesiredCapacity"], a.status()["state"]) == (1, "PENDING")
    assert b.status()["state"] == "RUNNING"


def test_the_default_run_is_the_newest_run_stack_then_the_newest_run_in_the_bucket(two_runs):
    a, b = two_runs
    assert control.find_run(a.session).run_id == "b"  # its stack was created last
    b.destroy_stack()
    assert control.find_run(a.session).run_id == "a"  # the newest stack still deployed
    a.destroy_stack()
    # No run stack left: the run in the bucket whose first attempt started last.
    status = a.status()
    status["attempts"][0]["started_at"] = iso(NOW + timedelta(minutes=5))
    a.put_status(status)
    assert control.find_run(a.session).run_id == "a"
    assert control.status_report(a.session, now=NOW).run.run_id == "a"


def test_a_run_whose_stack_is_destroyed_still_shows_its_status_logs_and_artifacts(two_runs, tmp_path):
    a, b = two_runs
    put_log(a, 1, ["kept line"])
    a.client("s3").put_object(Bucket=a.bucket, Key=a.layout.artifact_key("metrics.json"), Body=b"{}")
    a.destroy_stack()
    report = control.status_report(a.session, run_id="a", now=NOW)
    assert report.run.run_stack is None and report.status["last_epoch"] == 3
    assert report.log_tail == ["kept line"]  # from the log group the stack kept
    assert control_view.status_lines(report)[0].startswith("run a  (its stack Spotgrade-a is not deployed")
    assert log_lines(a, run_id="a", follow=True, sleep=lambda _: pytest.fail("nothing writes")) == [
        "[attempt-0001] kept line"]
    assert [p.name for p in control.pull(a.session, run_id="a", dest=tmp_path).files] == ["metrics.json"]
    for action in (control.stop, control.resume):
        with pytest.raises(CloudError, match="its stack Spotgrade-a is not deployed") as info:
            action(a.session, run_id="a")
        assert "\n" not in str(info.value) and "make deploy RUN=a" in str(info.value)
    assert b.group()["DesiredCapacity"] == 1


def test_an_unknown_run_id_is_one_line(two_runs):
    a, _ = two_runs
    with pytest.raises(CloudError, match="no run 'nope'.*`python -m training runs` lists the runs") as info:
        control.status_report(a.session, run_id="nope")
    assert "\n" not in str(info.value)
    from training.errors import ConfigError

    with pytest.raises(ConfigError, match="run id '../a' is invalid"):
        control.pull(a.session, run_id="../a")


def test_no_run_at_all_is_one_line(aws):
    from tests.training.cloud.moto_run import make_shared

    make_shared(aws)
    with pytest.raises(CloudError, match="no runs yet: .*make deploy RUN=<run-id>"):
        control.status_report(aws)
    assert control.runs(aws) == []


def test_runs_lists_every_run_with_its_stack(two_runs):
    a, b = two_runs
    b.destroy_stack()
    rows = {r["run_id"]: r for r in control.runs(a.session, now=NOW)}
    assert {r: (row["state"], row["stack"]) for r, row in rows.items()} == {
        "a": ("RUNNING", "Spotgrade-a"), "b": ("RUNNING", None)}
