"""status_store.py: status.json in S3, read and changed with conditional writes (in-process moto)."""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.training.cloud.core.helpers import INSTANCE, RUN, T0, at, running, start
from training.cloud.core import lifecycle as lc
from training.cloud.core.clock import parse_time
from training.cloud.core.layout import RunLayout
from training.cloud.core.lifecycle import FAILED, HUNG, RUNNING, STARTING, STOPPED, IllegalTransition
from training.cloud.core.status_store import StatusStore, read_status


@pytest.fixture()
def s3(aws):
    client = aws.client("s3")
    client.create_bucket(Bucket="spotgrade-lifecycle")
    return client


@pytest.fixture()
def layout() -> RunLayout:
    return RunLayout("spotgrade-lifecycle", RUN)


class Recording:
    """An S3 client that records put_object's arguments, and can run something just before the first put."""

    def __init__(self, s3, before_first_put=None) -> None:
        self.s3, self.before_first_put, self.puts, self.gets = s3, before_first_put, [], 0

    def get_object(self, **kwargs):
        self.gets += 1
        return self.s3.get_object(**kwargs)

    def put_object(self, **kwargs):
        if self.before_first_put is not None:
            hook, self.before_first_put = self.before_first_put, None
            hook()
        self.puts.append({k: v for k, v in kwargs.items() if k != "Body"})
        return self.s3.put_object(**kwargs)


def test_status_round_trip(s3, layout):
    assert read_status(s3, layout) is None
    before, after = StatusStore(s3, layout).change(lambda s: start(s))
    assert before is None and after["state"] == STARTING
    got = read_status(s3, layout)
    assert got == after and parse_time(got["updated_at"]).tzinfo is not None
    head = s3.head_object(Bucket=layout.bucket, Key=layout.status_key)
    assert (head["ContentType"], head["CacheControl"]) == ("application/json", "no-cache")
    assert json.loads(s3.get_object(Bucket=layout.bucket, Key=layout.status_key)["Body"].read())["run_id"] == RUN


def test_change_refuses_an_unknown_state_and_writes_nothing(s3, layout):
    with pytest.raises(IllegalTransition, match="'DONE'"):
        StatusStore(s3, layout).change(lambda s: {"run_id": RUN, "state": "DONE"})
    assert read_status(s3, layout) is None


def test_change_writes_nothing_when_nothing_changed(s3, layout):
    StatusStore(s3, layout).change(lambda s: start(s))
    client = Recording(s3)
    store = StatusStore(client, layout)
    before, after = store.change(lambda s: None)
    assert after == before and client.puts == []
    before, after = store.change(lambda s: s)
    assert after == before and client.puts == []
    before, after = store.change(lambda s: lc.stop(lc.stop(s, run_id=RUN, state=STOPPED, reason="a", now=T0),
                                                   run_id=RUN, state=HUNG, reason="b", now=T0))
    assert after["state"] == STOPPED and len(client.puts) == 1


def test_a_new_record_is_put_with_if_none_match_and_a_change_with_if_match(s3, layout):
    client = Recording(s3)
    store = StatusStore(client, layout)
    store.change(lambda s: start(s))
    created = s3.head_object(Bucket=layout.bucket, Key=layout.status_key)["ETag"]
    store.change(lambda s: lc.set_running(s, epochs=3, last_epoch=0, now=at(1)))
    first, second = client.puts
    assert first["IfNoneMatch"] == "*" and "IfMatch" not in first
    assert second["IfMatch"] == created and "IfNoneMatch" not in second  # the ETag it read


def test_s3_refuses_a_stale_etag_and_a_second_create(s3, layout):
    """What StatusStore relies on (moto 5 honours If-Match and If-None-Match on put_object)."""
    first = s3.put_object(Bucket=layout.bucket, Key=layout.status_key, Body=b"{}", IfNoneMatch="*")["ETag"]
    with pytest.raises(ClientError) as error:
        s3.put_object(Bucket=layout.bucket, Key=layout.status_key, Body=b"{}", IfNoneMatch="*")
    assert error.value.response["Error"]["Code"] == "PreconditionFailed"
    s3.put_object(Bucket=layout.bucket, Key=layout.status_key, Body=b'{"a": 1}', IfMatch=first)
    with pytest.raises(ClientError) as error:
        s3.put_object(Bucket=layout.bucket, Key=layout.status_key, Body=b'{"a": 2}', IfMatch=first)
    assert error.value.response["Error"]["Code"] == "PreconditionFailed"
    assert json.loads(s3.get_object(Bucket=layout.bucket, Key=layout.status_key)["Body"].read()) == {"a": 1}


def test_racing_writers_both_survive(s3, layout):
    """Writer A (the runner: epoch 4 done) reads; writer B (`stop`) changes the record before A's put; A's put
    fails its If-Match, A reads again and re-applies its change: the run is STOPPED *and* at epoch 4."""
    StatusStore(s3, layout).change(lambda s: running())
    writer_b = StatusStore(s3, layout)
    client = Recording(s3, before_first_put=lambda: writer_b.change(
        lambda s: lc.stop(s, run_id=RUN, state=STOPPED, reason="stopped by alice", now=at(20))))
    calls = []

    def epoch_done(status):
        calls.append(status["state"])
        return lc.epoch_done(status, epoch=3, validation={"accuracy": 0.6}, now=at(21))

    before, after = StatusStore(client, layout).change(epoch_done)
    assert calls == [RUNNING, STOPPED]  # applied to what A read, then again to what B wrote
    assert len(client.puts) == 2 and client.gets == 2
    final = read_status(s3, layout)
    assert final == after
    assert (final["state"], final["reason"]) == (STOPPED, "stopped by alice")  # B's update
    assert (final["last_epoch"], final["validation"]) == (4, {"accuracy": 0.6})  # A's update
    assert final["attempts"][-1]["end_state"] == STOPPED


def test_racing_creators_both_survive(s3, layout):
    """Two writers find no record: B creates it first; A's If-None-Match put fails, A retries on B's record."""
    writer_b = StatusStore(s3, layout)
    client = Recording(s3, before_first_put=lambda: writer_b.change(
        lambda s: lc.boot_failed(s, run_id=RUN, instance=INSTANCE, step="clone", detail="x", log_tail=[],
                                 boot_started=None, max_attempts=3, now=at(1))))
    _, after = StatusStore(client, layout).change(
        lambda s: lc.stop(s, run_id=RUN, state=HUNG, reason="watchdog", now=at(2)))
    assert [("IfNoneMatch" in p, "IfMatch" in p) for p in client.puts] == [(True, False)]  # the retry wrote nothing
    assert after["state"] == FAILED == read_status(s3, layout)["state"]  # B's FAILED kept, not overwritten


def test_change_gives_up_after_its_retries(layout):
    class AlwaysConflicting:
        def get_object(self, **_):
            raise ClientError({"Error": {"Code": "NoSuchKey"}}, "GetObject")

        def put_object(self, **_):
            raise ClientError({"Error": {"Code": "PreconditionFailed"}}, "PutObject")

    with pytest.raises(RuntimeError, match="3 conflicting writes in a row"):
        StatusStore(AlwaysConflicting(), layout, retries=3).change(lambda s: start(s))


def test_other_errors_are_not_retried(s3):
    layout = RunLayout("spotgrade-no-such-bucket", RUN)
    with pytest.raises(ClientError, match="NoSuchBucket"):
        StatusStore(s3, layout).change(lambda s: start(s))


def test_read_refuses_a_record_that_is_not_an_object(s3, layout):
    s3.put_object(Bucket=layout.bucket, Key=layout.status_key, Body=b"[1, 2]")
    with pytest.raises(ValueError, match="does not hold a JSON object"):
        read_status(s3, layout)
