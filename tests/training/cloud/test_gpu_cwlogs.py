"""GPU check and the CloudWatch Logs handler."""
import logging

import boto3
import pytest
from moto import mock_aws

from training.cloud import cwlogs
from training.cloud.gpu import GpuUnavailableError, check_gpu, has_gpu


@pytest.mark.parametrize("instance_type, gpu", [("g5.xlarge", True), ("g4dn.2xlarge", True), ("p3.2xlarge", True),
                                                ("c5.large", False), ("m7g.large", False), (None, False)])
def test_has_gpu(instance_type, gpu):
    assert has_gpu(instance_type) is gpu


def test_gpu_type_without_tensorflow_gpu_fails_clearly():
    lines = []
    with pytest.raises(GpuUnavailableError, match="g5.xlarge has a GPU but TensorFlow sees none"):
        check_gpu("g5.xlarge", lines.append, smi=lambda: "NVIDIA A10G", visible=lambda: [])
    assert any("NVIDIA A10G" in line for line in lines)


def test_gpu_seen_and_cpu_instance_pass():
    lines = []
    assert check_gpu("g5.xlarge", lines.append, smi=lambda: "A10G", visible=lambda: ["/physical_device:GPU:0"])
    assert check_gpu("c5.large", lines.append, smi=lambda: pytest.fail("no nvidia-smi on CPU types"),
                     visible=lambda: []) == []
    assert lines[-1] == "TensorFlow GPUs: none"


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


def test_batches_respect_size_limit():
    events = [{"timestamp": i, "message": "y" * 200_000} for i in range(12)]
    batches = list(cwlogs._batches(events))
    assert sum(len(b) for b in batches) == 12
    assert all(sum(len(e["message"]) + 26 for e in b) <= cwlogs.MAX_BATCH_BYTES for b in batches)
    assert len(batches) == 3
