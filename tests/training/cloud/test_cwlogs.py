"""The CloudWatch Logs handler: batches, size limits, flush on close."""
import logging

import boto3
from moto import mock_aws

from training.cloud import cwlogs


def test_cloudwatch_handler_batches_and_flushes_on_close():
    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName="/spotgrade")
        handler = cwlogs.CloudWatchLogsHandler(logs, "/spotgrade", "r/attempt-0001", flush_seconds=60)
        logger = logging.getLogger("test.cw")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            for i in range(25):
                logger.info("line %d", i)
            logger.info("x" * 300_000)
        finally:
            logger.removeHandler(handler)
            handler.close()
        events = logs.get_log_events(logGroupName="/spotgrade", logStreamName="r/attempt-0001",
                                     startFromHead=True)["events"]
        assert [e["message"] for e in events[:25]] == [f"line {i}" for i in range(25)]
        assert events[25]["message"].endswith("[truncated]") and len(events[25]["message"]) < 262_144
        assert handler.sent == 26


def test_a_second_close_is_harmless():
    """logging.shutdown closes every handler again at exit: that close sends nothing twice and raises nothing."""
    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName="/spotgrade")
        handler = cwlogs.CloudWatchLogsHandler(logs, "/spotgrade", "r/attempt-0002", flush_seconds=60)
        handler.emit(logging.makeLogRecord({"msg": "once"}))
        handler.close()
        handler.close()
        events = logs.get_log_events(logGroupName="/spotgrade", logStreamName="r/attempt-0002")["events"]
        assert [e["message"] for e in events] == ["once"] and handler.sent == 1


def test_batches_respect_size_limit():
    events = [{"timestamp": i, "message": "y" * 200_000} for i in range(12)]
    batches = list(cwlogs._batches(events))
    assert sum(len(b) for b in batches) == 12
    assert all(sum(len(e["message"]) + 26 for e in b) <= cwlogs.MAX_BATCH_BYTES for b in batches)
    assert len(batches) == 3
