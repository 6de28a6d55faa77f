"""Where the runner's log lines go: buffered, then the attempt's file (and stream), then S3."""
import logging

from training.cloud.run_settings import RunSettings
from training.cloud.runner_logs import AttemptLogs, BufferHandler, log


def test_buffered_lines_reach_the_attempt_log(tmp_path, caplog):
    settings = RunSettings(run_id="r-1", bucket="spotgrade-b", work_dir=tmp_path)
    buffer = BufferHandler()
    log.addHandler(buffer)
    log.setLevel(logging.INFO)
    try:
        log.info("before the attempt")
        logs = AttemptLogs.open(settings, None, settings.layout, 3)  # no log group: the file only
        logs.take_over_from(buffer)
        log.info("during the attempt")
        logs.close()
        log.info("after the attempt")
    finally:
        log.removeHandler(buffer)
    assert logs.path == tmp_path / "logs" / "attempt-0003.log" and len(logs.handlers) == 1
    lines = logs.path.read_text().splitlines()
    assert [line.split(" INFO ")[1] for line in lines] == ["before the attempt", "during the attempt"]


def test_a_failed_upload_is_logged_not_raised(tmp_path, caplog):
    settings = RunSettings(run_id="r-1", bucket="spotgrade-b", work_dir=tmp_path)
    logs = AttemptLogs.open(settings, None, settings.layout, 1)
    logs.close()

    class BrokenS3:
        def upload_file(self, *args, **kwargs):
            raise RuntimeError("no network")

    with caplog.at_level(logging.ERROR, logger=log.name):
        logs.upload(BrokenS3(), 1)
    assert "could not upload the log" in caplog.text and "no network" in caplog.text
