"""The on-instance runner: `python -m training.cloud.run --env-file /etc/spotgrade/run.env`.

One attempt of a run: read status.json; if the run is already terminal, scale the group to 0 and exit;
otherwise start attempt N+1, restore checkpoints from S3, download the data, train with Keras
BackupAndRestore (synced to S3 after every epoch), heartbeat into status.json while training advances,
upload the artifacts and end SUCCEEDED, then scale the group to 0. A spot interruption notice (or SIGTERM),
the max runtime cap or a `stop` stops training at the next batch; the partial epoch is dropped (at most one
epoch lost) and is redone by the next attempt, which resumes from the last epoch synced to S3.

Every change of status.json goes through training/cloud/lifecycle.py, which also defines the exit statuses
(`RunnerExit`) the user data acts on: a user error (bad flags, bad data) ends the run FAILED; an unexpected
error ends the attempt CRASHED and the group retries, until maxAttempts attempts in a row have failed.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from training.cloud import aws
from training.cloud.core import lifecycle
from training.cloud.cwlogs import CloudWatchLogsHandler
from training.cloud.core.imds import Imds, InstanceInfo, MetadataError
from training.cloud.core.lifecycle import RunnerExit, StatusStore
from training.cloud.settings import RunSettings, load_settings
from training.errors import ConfigError, SpotgradeError

EXIT_FOR_STATE = {lifecycle.SUCCEEDED: RunnerExit.SUCCEEDED, lifecycle.FAILED: RunnerExit.FAILED,
                  lifecycle.INTERRUPTED: RunnerExit.INTERRUPTED, lifecycle.STOPPED: RunnerExit.STOPPED,
                  lifecycle.HUNG: RunnerExit.STOPPED, lifecycle.RETRYING: RunnerExit.RETRY}
EXIT_UNRECORDED = 70  # not a RunnerExit on purpose: the user data records the attempt as CRASHED itself
BACKUP_METADATA = "training_metadata.json"  # written last by BackupAndRestore: uploaded last
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
_CONTENT_TYPES = {".json": "application/json", ".png": "image/png", ".keras": "application/zip"}

log = logging.getLogger("spotgrade.runner")


class StopRequest:
    """The first reason to stop training wins: INTERRUPTED (spot notice) or STOPPED (cap, `stop`)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.state: str | None = None
        self.reason: str | None = None
        self.at: float | None = None
        self._lock = threading.Lock()

    def request(self, state: str, reason: str) -> None:
        with self._lock:
            if self.state is None:
                self.state, self.reason, self.at = state, reason, time.monotonic()
                log.warning("stopping at the next batch: %s", reason)
                self.event.set()


class Progress:
    """Counts what the attempt got done (batches, epochs, set-up steps): the heartbeat follows it, not a clock."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def advance(self) -> None:
        with self._lock:
            self.count += 1


class _Stopped(Exception):
    """Stop requested before training started."""


class Runner:
    def __init__(self, settings: RunSettings, *, clients: aws.Clients | None = None, imds: Imds | None = None,
                 train_fn: Callable[..., Any] | None = None, log_handlers: list[logging.Handler] | None = None) -> None:
        self.settings = settings
        self.layout = settings.layout
        self.imds = imds or Imds(settings.metadata_url)
        self._clients = clients
        self._train_fn = train_fn
        self.stop = StopRequest()
        self.progress = Progress()
        self._done = threading.Event()
        self._extra_handlers = log_handlers or []
        self.measurements: dict[str, float] = {}
        self._local_names: dict[str, str] = {}  # downloaded data file -> its s3:// URI
        self._active: aws.Clients | None = None
        self.step = "start"
        self.status: dict = {}  # status.json as this runner last wrote it
        self.store: StatusStore | None = None  # set once the clients exist

    # ---- entry point -------------------------------------------------------------------------------------
    def run(self) -> int:
        buffer = _BufferHandler()
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setFormatter(logging.Formatter(LOG_FORMAT))
        handlers: list[logging.Handler] = [buffer, stderr, *self._extra_handlers]
        for handler in handlers:
            log.addHandler(handler)
        log.setLevel(logging.INFO)
        previous = _on_sigterm(lambda: self.stop.request(lifecycle.INTERRUPTED, "SIGTERM (instance shutting down)"))
        try:
            return int(self._run(buffer))
        except Exception as error:  # before an attempt could be recorded (e.g. the bucket is unreachable)
            log.error("runner failed before the attempt could be recorded: %s", error)
            return EXIT_UNRECORDED
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            for handler in handlers:
                log.removeHandler(handler)

    def _change(self, fn: Callable[[dict | None], dict | None]) -> dict:
        """Apply a lifecycle transition to status.json (conditional write) and keep the result."""
        _, after = self.store.change(fn)
        self.status = after or {}
        return self.status

    def _run(self, buffer: "_BufferHandler") -> RunnerExit:
        info = self._instance_info()
        clients = self._active = self._clients or aws.make_clients(self.settings.region or info.region)
        self.store = StatusStore(clients.s3, self.layout)
        current = self.store.read()
        if lifecycle.is_terminal(current):
            log.info("run %s is already %s: nothing to do", self.layout.run_id, current["state"])
            aws.scale_to_zero(clients.autoscaling, self.settings.asg_name)
            return RunnerExit.SUCCEEDED
        price = aws.spot_price(clients.ec2, info.instance_type, info.availability_zone) \
            if info.lifecycle == "spot" else None
        instance = {"instance_id": info.instance_id, "instance_type": info.instance_type,
                    "availability_zone": info.availability_zone, "lifecycle": info.lifecycle}
        status = self._change(lambda s: lifecycle.start_attempt(
            s, run_id=self.layout.run_id, instance=instance, spot_price=price,
            max_attempts=self.settings.max_attempts, now=lifecycle.utc_now()))
        if lifecycle.is_terminal(status):  # the attempts before this one used up maxAttempts
            log.error("run %s is %s: %s", self.layout.run_id, status["state"], status.get("error"))
            self._notify(clients, status["state"], status.get("error"), None)
            aws.scale_to_zero(clients.autoscaling, self.settings.asg_name)
            return EXIT_FOR_STATE[status["state"]]
        attempt = status["attempt"]
        deadline = self._deadline(status)
        attempt_log = self.settings.work_dir / "logs" / f"attempt-{attempt:04d}.log"
        attempt_log.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(attempt_log)
        file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
        cloudwatch = self._cloudwatch(clients, attempt)
        buffer.replay_into([h for h in (file_handler, cloudwatch) if h is not None])
        log.removeHandler(buffer)
        for handler in (file_handler, cloudwatch):
            if handler is not None:
                log.addHandler(handler)

        log.info("run %s attempt %d on %s (%s, %s, %s)", self.layout.run_id, attempt, info.instance_id,
                 info.instance_type, info.availability_zone, info.lifecycle)
        threads = [threading.Thread(target=self._watch_notices, name="notice-watcher", daemon=True),
                   threading.Thread(target=self._monitor, args=(deadline,), name="monitor", daemon=True)]
        for thread in threads:
            thread.start()
        end_state, fields = "CRASHED", {}
        try:
            end_state, fields = self._attempt(clients)
        except _Stopped:
            end_state, fields = self.stop.state or lifecycle.STOPPED, {"reason": self.stop.reason}
        except SpotgradeError as error:  # a user error (flags, data): retrying cannot help
            message = str(error).splitlines()[0]
            for local, uri in self._local_names.items():  # name the data as the user gave it
                message = message.replace(local, uri)
            log.error("attempt failed at step '%s': %s", self.step, message)
            end_state, fields = lifecycle.FAILED, {"error": message, "step": f"runner: {self.step}"}
        except BaseException as error:  # anything else may be transient or a bug: the group retries
            log.error("attempt crashed at step '%s':\n%s", self.step, traceback.format_exc())
            end_state = "CRASHED"
            fields = {"error": f"step '{self.step}': {type(error).__name__}: {error}".splitlines()[0]}
        finally:
            self._done.set()
            for thread in threads:
                thread.join(timeout=10)
        return self._finish(clients, end_state, fields, attempt_log, [file_handler, cloudwatch])

    # ---- one attempt -------------------------------------------------------------------------------------
    def _at(self, step: str) -> None:
        self.step = step
        self.progress.advance()

    def _attempt(self, clients: aws.Clients) -> tuple[str, dict]:
        from training.cloud.gpu import check_gpu

        work = self.settings.work_dir
        backup_dir = work / "backup"
        shutil.rmtree(backup_dir, ignore_errors=True)
        backup_dir.mkdir(parents=True)
        self._at("gpu check")
        check_gpu((lifecycle.open_attempt(self.status) or {}).get("instance_type"), log.info)
        self._at("checkpoints")
        restored = aws.download_prefix(clients.s3, self.layout.bucket, self.layout.checkpoints_prefix, backup_dir)
        resume = _backup_epoch(backup_dir)
        log.info("checkpoints: %s", f"resuming after epoch {resume} ({len(restored)} files)" if restored
                 else "none, starting from scratch")
        data_paths = None
        if self.settings.data_uri:
            self._at("data download")
            shutil.rmtree(work / "data", ignore_errors=True)
            data_paths = [str(p) for p in aws.download_data(clients.s3, self.settings.data_uri, work / "data")]
            self._local_names = {path: f"{self.settings.data_uri.rstrip('/')}#{Path(path).name}"
                                 for path in data_paths}
            if len(data_paths) == 1:
                self._local_names[data_paths[0]] = self.settings.data_uri
        self._at("training settings")
        config = train_config(self.settings.train_args, data=data_paths, output_dir=work / "outputs",
                              run_id=self.layout.run_id)
        if self.stop.event.is_set():
            raise _Stopped()
        last_epoch = resume or self.status.get("last_epoch", 0)
        self._change(lambda s: lifecycle.set_running(s, epochs=config.epochs, last_epoch=last_epoch,
                                                     now=lifecycle.utc_now()))
        self._at("training")
        train_fn, interrupted = self._training()
        callbacks = [make_epoch_callback(backup_dir, lambda epoch, logs, ready: self._epoch_done(
                         clients, backup_dir, config.epochs, epoch, logs, ready)),
                     make_progress_callback(self.progress, self.settings.test_stall_at_epoch)]

        def log_progress(message: str) -> None:  # every step train() reports is progress too
            self.progress.advance()
            log.info(message)

        try:
            result = train_fn(config, callbacks=callbacks, backup_dir=backup_dir, stop_event=self.stop.event,
                              log=log_progress)
        except (ValueError, OSError) as error:
            if resume and not (lifecycle.open_attempt(self.status) or {}).get("epochs_completed") \
                    and "load" in str(error).lower():
                raise ConfigError(
                    f"the checkpoints in {self.layout.uri(self.layout.checkpoints_prefix)} do not fit this model "
                    f"({type(error).__name__}: {str(error).splitlines()[0][:120]}): train with the same code and "
                    "flags as before, or delete the checkpoints / use a new run id") from error
            raise
        except interrupted:
            self.measurements["checkpoint_after_notice_s"] = time.monotonic() - (self.stop.at or time.monotonic())
            log.info("training stopped; checkpoints in S3 hold epoch %s (%.2f s after the stop request)",
                     self.status.get("last_epoch"), self.measurements["checkpoint_after_notice_s"])
            return self.stop.state or lifecycle.STOPPED, {"reason": self.stop.reason}
        self._at("artifacts upload")
        log.info("training finished after epoch %d; uploading artifacts", result.epochs_trained)
        _add_cloud_record(Path(result.run_dir) / "run.json", self.status)
        keys = []
        for path in sorted(p for p in Path(result.run_dir).iterdir() if p.is_file()):  # not data/ (inputs)
            keys.append(self.layout.artifact_key(path.name))
            aws.upload_file(clients.s3, path, self.layout.bucket, keys[-1], _CONTENT_TYPES.get(path.suffix))
        log.info("artifacts: %s", ", ".join(k[len(self.layout.artifacts_prefix):] for k in keys))
        metrics = result.metrics if isinstance(result.metrics, dict) else {}
        return lifecycle.SUCCEEDED, {"metrics": _headline(metrics)}

    def _training(self) -> tuple[Callable[..., Any], type[BaseException]]:
        from training.train import TrainingInterrupted, train

        return self._train_fn or train, TrainingInterrupted

    def _epoch_done(self, clients: aws.Clients, backup_dir: Path, epochs: int, epoch: int, logs: dict,
                    ready: bool) -> None:
        """After a completed epoch: mirror the backup to S3 (metadata file last), then record the epoch."""
        if ready:
            aws.upload_dir(clients.s3, backup_dir, self.layout.bucket, self.layout.checkpoints_prefix,
                           last=(BACKUP_METADATA,))
        validation = {k[4:]: float(v) for k, v in (logs or {}).items() if k.startswith("val_")}
        self._change(lambda s: lifecycle.epoch_done(s, epoch=epoch, validation=validation or None,
                                                    now=lifecycle.utc_now()))
        log.info("epoch %d/%d done%s; %s", epoch + 1, epochs,
                 "".join(f", {k}={float(v):.4f}" for k, v in sorted((logs or {}).items())),
                 "checkpoint in S3" if ready else "no checkpoint to sync")

    # ---- background threads ------------------------------------------------------------------------------
    def _watch_notices(self) -> None:
        """Poll IMDS for a spot instance action every notice_poll_seconds (404: none)."""
        warned = False
        while not self._done.is_set() and not self.stop.event.is_set():
            try:
                action = self.imds.spot_action()
            except MetadataError as error:
                if not warned:
                    log.warning("spot notice poll failed (will keep trying): %s", error)
                    warned = True
                action = None
            if action:
                self.measurements["notice_seen_at"] = time.time()
                self.stop.request(lifecycle.INTERRUPTED, f"spot interruption notice: {action.get('action')} at "
                                                         f"{action.get('time', 'unknown time')}")
                return
            self._done.wait(self.settings.notice_poll_seconds)

    def _monitor(self, deadline: float | None) -> None:
        """Heartbeat while training advances; stop on the max runtime cap or a terminal state set out of band.

        A beat is written only when the progress count moved since the last one, so a stuck input pipeline or
        GPU lets the heartbeat go stale and the watchdog sees the run HUNG.
        """
        next_beat = time.monotonic() + self.settings.heartbeat_seconds
        beaten = self.progress.count
        while not self._done.wait(min(1.0, self.settings.heartbeat_seconds)):
            if deadline is not None and time.time() >= deadline:
                self.stop.request(lifecycle.STOPPED, f"max runtime of {self.settings.max_runtime_hours:g} h reached")
            if time.monotonic() < next_beat:
                continue
            next_beat = time.monotonic() + self.settings.heartbeat_seconds
            count = self.progress.count
            try:
                if count != beaten:
                    status = self._change(lambda s: None if s is None else lifecycle.heartbeat(
                        s, progress=count, now=lifecycle.utc_now()))
                    beaten = count
                else:
                    status = self.store.read() or {}
            except Exception as error:  # keep training; the next beat retries
                log.warning("heartbeat failed: %s", error)
                continue
            if lifecycle.is_terminal(status):
                self.stop.request(lifecycle.STOPPED, f"run set to {status['state']} out of band: "
                                                     f"{status.get('reason')}")

    # ---- end of attempt ----------------------------------------------------------------------------------
    def _finish(self, clients: aws.Clients, end_state: str, fields: dict, attempt_log: Path,
                handlers: list[logging.Handler | None]) -> RunnerExit:
        metrics = fields.pop("metrics", None)
        if end_state in (lifecycle.FAILED, "CRASHED"):
            fields["log_tail"] = lifecycle.log_tail(attempt_log)
        try:
            status = self._change(lambda s: lifecycle.end_attempt(s, end_state, now=lifecycle.utc_now(), **fields))
        except Exception:
            log.error("could not write the final status:\n%s", traceback.format_exc())
            status = {**self.status, "state": lifecycle.RETRYING if end_state == "CRASHED" else end_state}
        final = status.get("state")
        detail = status.get("error") or status.get("reason")
        log.info("attempt %d ended %s; run %s%s", status.get("attempt"), end_state, final,
                 f" ({detail})" if detail else "")
        self._notify(clients, final, detail, metrics)
        terminal = final in lifecycle.TERMINAL_STATES
        if terminal and self.settings.asg_name:
            log.info("scaling %s to 0", self.settings.asg_name)
        for handler in handlers:
            if handler is not None:
                log.removeHandler(handler)
                handler.close()
        try:
            aws.upload_file(clients.s3, attempt_log, self.layout.bucket, self.layout.log_key(status["attempt"]),
                            content_type="text/plain; charset=utf-8")
        except Exception as error:
            log.error("could not upload the log %s: %s", attempt_log, error)
        if terminal:
            aws.scale_to_zero(clients.autoscaling, self.settings.asg_name)
        return EXIT_FOR_STATE.get(final, RunnerExit.RETRY)

    def _notify(self, clients: aws.Clients, state: str, detail: str | None, metrics: dict | None) -> None:
        from training.cloud.core import notify

        if metrics:
            detail = "test metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()))
        try:
            notify.publish(clients.sns, self.settings.topic_arn, self.layout.run_id, state, self.status, detail)
        except Exception as error:
            log.warning("notification failed: %s", error)

    # ---- helpers -----------------------------------------------------------------------------------------
    def _instance_info(self) -> InstanceInfo:
        try:
            return self.imds.instance_info()
        except MetadataError as error:
            log.warning("instance metadata unavailable (%s): instance fields left empty", error)
            return InstanceInfo(None, None, None, None, None)

    def _cloudwatch(self, clients: aws.Clients, attempt: int) -> logging.Handler | None:
        if not self.settings.log_group:
            return None
        try:
            handler = CloudWatchLogsHandler(clients.logs, self.settings.log_group, self.layout.log_stream(attempt),
                                            flush_seconds=self.settings.log_flush_seconds)
        except Exception as error:
            log.warning("CloudWatch Logs unavailable (%s): logging to the file and S3 only", error)
            return None
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        return handler

    def _deadline(self, status: dict) -> float | None:
        if not self.settings.max_runtime_hours:
            return None
        attempts = status.get("attempts") or []
        start = lifecycle.parse_time(attempts[0]["started_at"]).timestamp() if attempts else time.time()
        return start + self.settings.max_runtime_hours * 3600


def make_progress_callback(progress: Progress, stall_at_epoch: int | None = None):
    """A Keras callback advancing `progress` on every training and validation batch.

    `stall_at_epoch` is a test hook (SPOTGRADE_TEST_STALL_AT_EPOCH): the first batch of that epoch (0-based)
    blocks forever, as a stuck input pipeline or GPU would; nothing else changes.
    """
    import keras

    class ProgressCounter(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            progress.advance()

        def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
            progress.advance()

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            if stall_at_epoch is not None and epoch >= stall_at_epoch:
                log.warning("test hook SPOTGRADE_TEST_STALL_AT_EPOCH=%d: blocking training", stall_at_epoch)
                threading.Event().wait()

    return ProgressCounter()


def _on_sigterm(callback: Callable[[], None]) -> Any:
    """Call back on SIGTERM (shutdown without a spot notice); returns the previous handler, or None
    where signals cannot be set (not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda signum, frame: callback())


class _BufferHandler(logging.Handler):
    """Holds records until the attempt's log file exists."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def replay_into(self, handlers: list[logging.Handler]) -> None:
        for record in self.records:
            for handler in handlers:
                handler.handle(record)


def make_epoch_callback(backup_dir: Path, on_epoch: Callable[[int, dict, bool], None]):
    """A Keras callback calling on_epoch(epoch, logs, ready) once per completed epoch.

    `ready` says the backup directory holds that epoch's state (BackupAndRestore's metadata says so).
    train() stops by raising from a batch callback, so an epoch cut short never reaches on_epoch_end
    and its partial state never reaches S3. Where BackupAndRestore runs after this callback, the report
    waits for the next epoch's start.
    """
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.pending: tuple[int, dict] | None = None

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = dict(logs or {})
            if _backup_epoch(backup_dir) == epoch + 1:
                on_epoch(epoch, logs, True)
            else:
                self.pending = (epoch, logs)

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._flush()

        def on_train_end(self, logs: dict | None = None) -> None:
            self._flush()

        def _flush(self) -> None:
            if self.pending is not None:
                epoch, logs = self.pending
                self.pending = None
                on_epoch(epoch, logs, _backup_epoch(backup_dir) == epoch + 1)

    return EpochRecorder()


def _backup_epoch(backup_dir: Path) -> int | None:
    """Completed epochs recorded by BackupAndRestore in backup_dir, or None."""
    try:
        return int(json.loads((backup_dir / BACKUP_METADATA).read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _headline(metrics: dict) -> dict:
    test = metrics.get("test") or {}
    return {k: test[k] for k in ("accuracy", "weighted_f1", "macro_f1") if k in test}


def _add_cloud_record(run_json: Path, status: dict) -> None:
    """Add the attempts (instance, times, billable seconds, estimated cost) to run.json."""
    if not run_json.exists():
        return
    info = json.loads(run_json.read_text())
    attempts = status.get("attempts", [])
    costs = [a.get("estimated_cost") for a in attempts]
    info["cloud"] = {
        "run_id": status.get("run_id"),
        "attempts": attempts,
        "billable_seconds": sum(a.get("billable_seconds") or 0 for a in attempts),
        "estimated_cost": round(sum(costs), 6) if costs and None not in costs else None,
    }
    run_json.write_text(json.dumps(info, indent=2, default=str))


def train_config(args: tuple[str, ...] | list[str], *, data: list[str] | None, output_dir: Path, run_id: str):
    """TrainConfig from `python -m training train` flags (SPOTGRADE_TRAIN_ARGS); the runner sets the output
    directory and run id, and the data where SPOTGRADE_DATA_URI gave some."""
    import contextlib
    import io

    from training.cli import build_parser, train_config_from_args

    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            parsed = build_parser().parse_args(["train", *args])
    except SystemExit:
        message = errors.getvalue().strip().splitlines()[-1:] or ["invalid flags"]
        raise ConfigError(f"SPOTGRADE_TRAIN_ARGS {' '.join(args)!r}: {message[0]}") from None
    parsed.output, parsed.run_id = str(output_dir), run_id
    if data is not None:
        parsed.data = data
    return train_config_from_args(parsed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.cloud.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-file", type=Path, help="run settings written by the user data (KEY=VALUE lines)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.env_file)
    except SpotgradeError as error:
        print(f"error: {error}", file=sys.stderr)
        return int(RunnerExit.CONFIG)
    return Runner(settings).run()


if __name__ == "__main__":
    sys.exit(main())
