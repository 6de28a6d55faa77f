"""One attempt of a run on the instance, from status.json's start to its end (see training/cloud/run.py).

Read status.json; if the run is already terminal, scale the group to 0 and exit; otherwise start attempt N+1,
restore checkpoints from S3, download the data, train with Keras BackupAndRestore (synced to S3 after every
epoch), heartbeat into status.json while training advances, upload the artifacts and end SUCCEEDED, then scale
the group to 0. A spot interruption notice (or SIGTERM), the max runtime cap or a `stop` stops training at the
next batch; the partial epoch is dropped (at most one epoch lost) and is redone by the next attempt, which
resumes from the last epoch synced to S3.

Every change of status.json goes through training/cloud/core/lifecycle.py, which also defines the exit
statuses (`RunnerExit`) the user data acts on: a user error (bad flags, bad data) ends the run FAILED; an
unexpected error ends the attempt CRASHED and the group retries, until maxAttempts attempts in a row failed.
"""
from __future__ import annotations

import json
import logging
import shutil
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from training import train_flags
from training.cloud import aws
from training.cloud.attempt_watch import Progress, StopRequest, monitor, watch_notices
from training.cloud.core import clock, env, lifecycle
from training.cloud.core.headline import headline, metrics_line
from training.cloud.core.imds import Imds, InstanceInfo, MetadataError
from training.cloud.core.lifecycle import RunnerExit
from training.cloud.core.status_store import StatusStore
from training.cloud.keras_hooks import (
    BACKUP_METADATA,
    backup_epoch,
    make_epoch_callback,
    make_progress_callback,
)
from training.cloud.run_settings import RunSettings
from training.cloud.runner_logs import AttemptLogs, BufferHandler
from training.errors import ConfigError, SpotgradeError

EXIT_FOR_STATE = {lifecycle.SUCCEEDED: RunnerExit.SUCCEEDED, lifecycle.FAILED: RunnerExit.FAILED,
                  lifecycle.INTERRUPTED: RunnerExit.INTERRUPTED, lifecycle.STOPPED: RunnerExit.STOPPED,
                  lifecycle.HUNG: RunnerExit.STOPPED, lifecycle.RETRYING: RunnerExit.RETRY}
EXIT_UNRECORDED = 70  # not a RunnerExit on purpose: the user data records the attempt as CRASHED itself
INPUTS_DIR = "data"  # the run directory's inputs (train's synthetic sample, data/synthetic.csv): not an artifact
CRASHED = "CRASHED"  # an attempt's end state: lifecycle.end_attempt then makes the run RETRYING or FAILED

log = logging.getLogger("spotgrade.runner")


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
        self.step = "start"
        self.status: dict = {}  # status.json as this runner last wrote it
        self.store: StatusStore | None = None  # set once the clients exist

    # ---- entry point -------------------------------------------------------------------------------------
    def run(self) -> int:
        buffer = BufferHandler()
        handlers: list[logging.Handler] = [buffer, AttemptLogs.stderr(), *self._extra_handlers]
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

    def _run(self, buffer: BufferHandler) -> RunnerExit:
        info = self._instance_info()
        clients = self._clients or aws.make_clients(self.settings.region or info.region)
        self.store = StatusStore(clients.s3, self.layout)
        current = self.store.read()
        if lifecycle.is_terminal(current):
            log.info("run %s is already %s: nothing to do", self.layout.run_id, current["state"])
            aws.scale_to_zero(clients.autoscaling, self.settings.asg_name)
            return RunnerExit.SUCCEEDED
        status = self._start_attempt(clients, info)
        if lifecycle.is_terminal(status):  # the attempts before this one used up maxAttempts
            log.error("run %s is %s: %s", self.layout.run_id, status["state"], status.get("error"))
            self._notify(clients, status["state"], status.get("error"), None)
            aws.scale_to_zero(clients.autoscaling, self.settings.asg_name)
            return EXIT_FOR_STATE[status["state"]]
        logs = AttemptLogs.open(self.settings, clients.logs, self.layout, status["attempt"])
        logs.take_over_from(buffer)
        log.info("run %s attempt %d on %s (%s, %s, %s)", self.layout.run_id, status["attempt"], info.instance_id,
                 info.instance_type, info.availability_zone, info.lifecycle)
        log.info("code: gitRef %s at commit %s%s", self.settings.git_ref, status["attempts"][-1].get("git_commit"),
                 " (allowUnpushedCode)" if self.settings.allow_unpushed_code else "")
        end_state, fields = self._supervised_attempt(clients, self._deadline(status))
        return self._finish(clients, end_state, fields, logs)

    def _start_attempt(self, clients: aws.Clients, info: InstanceInfo) -> dict:
        """Record attempt N+1 on this instance (at its spot price, with the commit it runs and the code deployed);
        the status may say the run is over instead."""
        from training.run_record import git_commit

        price = aws.spot_price(clients.ec2, info.instance_type, info.availability_zone) \
            if info.lifecycle == "spot" else None
        instance = {"instance_id": info.instance_id, "instance_type": info.instance_type,
                    "availability_zone": info.availability_zone, "lifecycle": info.lifecycle}
        settings = self.settings
        code = lifecycle.code_record(settings.git_ref, settings.git_commit, settings.allow_unpushed_code)
        checkout = git_commit()
        if settings.git_commit and checkout != settings.git_commit:
            log.warning("this checkout is at %s, not the deployed commit %s", checkout, settings.git_commit)
        return self._change(lambda s: lifecycle.start_attempt(
            s, run_id=self.layout.run_id, instance=instance, spot_price=price,
            max_attempts=settings.max_attempts, now=clock.utc_now(), code=code, git_commit=checkout))

    def _supervised_attempt(self, clients: aws.Clients, deadline: float | None) -> tuple[str, dict]:
        """The attempt, watched by the notice poller and the monitor; how it ended and the fields to record."""
        settings = self.settings
        threads = [threading.Thread(target=watch_notices, name="notice-watcher", daemon=True,
                                    args=(self.imds, self.stop, self._done, settings.notice_poll_seconds,
                                          self.measurements)),
                   threading.Thread(target=monitor, name="monitor", daemon=True,
                                    args=(self.progress, self.stop, self._done),
                                    kwargs=dict(heartbeat_seconds=settings.heartbeat_seconds, deadline=deadline,
                                                max_runtime_hours=settings.max_runtime_hours, beat=self._beat,
                                                read=self.store.read))]
        for thread in threads:
            thread.start()
        try:
            return self._attempt(clients)
        except _Stopped:
            return self.stop.state or lifecycle.STOPPED, {"reason": self.stop.reason}
        except SpotgradeError as error:  # a user error (flags, data): retrying cannot help
            return self._failed(error)
        except BaseException as error:  # anything else may be transient or a bug: the group retries
            log.error("attempt crashed at step '%s':\n%s", self.step, traceback.format_exc())
            return CRASHED, {"error": f"step '{self.step}': {type(error).__name__}: {error}".splitlines()[0]}
        finally:
            self._done.set()
            for thread in threads:
                thread.join(timeout=10)

    def _beat(self, count: int) -> dict:
        """Write a heartbeat at this progress count; the status after it."""
        return self._change(lambda s: None if s is None else lifecycle.heartbeat(s, progress=count,
                                                                                  now=clock.utc_now()))

    def _failed(self, error: SpotgradeError) -> tuple[str, dict]:
        message = str(error).splitlines()[0]
        for local, uri in self._local_names.items():  # name the data as the user gave it
            message = message.replace(local, uri)
        log.error("attempt failed at step '%s': %s", self.step, message)
        return lifecycle.FAILED, {"error": message, "step": f"runner: {self.step}"}

    # ---- one attempt -------------------------------------------------------------------------------------
    def _at(self, step: str) -> None:
        self.step = step
        self.progress.advance()

    def _attempt(self, clients: aws.Clients) -> tuple[str, dict]:
        from training.cloud.gpu import check_gpu
        from training.tf_quiet import load_tensorflow

        backup_dir = self.settings.work_dir / "backup"
        shutil.rmtree(backup_dir, ignore_errors=True)
        backup_dir.mkdir(parents=True)
        self._at("tensorflow import")
        load_tensorflow()  # the first import of TensorFlow, without its start-up lines in the attempt's log
        self._at("gpu check")
        check_gpu((lifecycle.open_attempt(self.status) or {}).get("instance_type"), log.info)
        self._at("checkpoints")
        resume = self._restore_checkpoints(clients, backup_dir)
        data_paths = self._download_data(clients)
        self._at("training settings")
        config = train_config(self.settings.train_args, data=data_paths, output_dir=self.settings.work_dir / "outputs",
                              run_id=self.layout.run_id, cache_dir=self.settings.work_dir / "cache")
        if self.stop.event.is_set():
            raise _Stopped()
        last_epoch = resume or self.status.get("last_epoch", 0)
        self._change(lambda s: lifecycle.set_running(s, epochs=config.epochs, last_epoch=last_epoch,
                                                     now=clock.utc_now()))
        self._at("training")
        result = self._train(clients, config, backup_dir, resume)
        if result is None:  # stopped at a batch by a notice, the cap or `stop`
            return self.stop.state or lifecycle.STOPPED, {"reason": self.stop.reason}
        self._at("artifacts upload")
        return lifecycle.SUCCEEDED, {"metrics": self._upload_artifacts(clients, result)}

    def _restore_checkpoints(self, clients: aws.Clients, backup_dir: Path) -> int | None:
        """Download the checkpoints into backup_dir; the epochs they hold, or None."""
        restored = aws.download_prefix(clients.s3, self.layout.bucket, self.layout.checkpoints_prefix, backup_dir)
        resume = backup_epoch(backup_dir)
        log.info("checkpoints: %s", f"resuming after epoch {resume} ({len(restored)} files)" if restored
                 else "none, starting from scratch")
        return resume

    def _download_data(self, clients: aws.Clients) -> list[str] | None:
        """The data files of the run's data URI, downloaded (None: train's own --data or sample)."""
        if not self.settings.data_uri:
            return None
        self._at("data download")
        work, uri = self.settings.work_dir, self.settings.data_uri
        shutil.rmtree(work / "data", ignore_errors=True)
        data_paths = [str(p) for p in aws.download_data(clients.s3, uri, work / "data")]
        self._local_names = {path: f"{uri.rstrip('/')}#{Path(path).name}" for path in data_paths}
        if len(data_paths) == 1:
            self._local_names[data_paths[0]] = uri
        return data_paths

    def _train(self, clients: aws.Clients, config: Any, backup_dir: Path, resume: int | None) -> Any:
        """train()'s result, or None where a stop request ended training."""
        from training.train import TrainingInterrupted, train

        callbacks = [make_epoch_callback(backup_dir, lambda epoch, logs, ready: self._epoch_done(
                         clients, backup_dir, config.epochs, epoch, logs, ready)),
                     make_progress_callback(self.progress.advance, self.settings.test_stall_at_epoch)]
        try:
            return (self._train_fn or train)(config, callbacks=callbacks, backup_dir=backup_dir,
                                             stop_event=self.stop.event, log=self._log_progress)
        except (ValueError, OSError) as error:
            if resume and not (lifecycle.open_attempt(self.status) or {}).get("epochs_completed") \
                    and "load" in str(error).lower():
                raise ConfigError(
                    f"the checkpoints in {self.layout.uri(self.layout.checkpoints_prefix)} do not fit this model "
                    f"({type(error).__name__}: {str(error).splitlines()[0][:120]}): train with the same code and "
                    "flags as before, or delete the checkpoints / use a new run id") from error
            raise
        except TrainingInterrupted:
            self.measurements["checkpoint_after_notice_s"] = time.monotonic() - (self.stop.at or time.monotonic())
            log.info("training stopped; checkpoints in S3 hold epoch %s (%.2f s after the stop request)",
                     self.status.get("last_epoch"), self.measurements["checkpoint_after_notice_s"])
            return None

    def _log_progress(self, message: str) -> None:
        """train()'s log: every step it reports is progress too."""
        self.progress.advance()
        log.info(message)

    def _epoch_done(self, clients: aws.Clients, backup_dir: Path, epochs: int, epoch: int, logs: dict,
                    ready: bool) -> None:
        """After a completed epoch: mirror the backup to S3 (metadata file last), then record the epoch."""
        if ready:
            aws.upload_dir(clients.s3, backup_dir, self.layout.bucket, self.layout.checkpoint_key,
                           last=(BACKUP_METADATA,))
        validation = {k[4:]: float(v) for k, v in (logs or {}).items() if k.startswith("val_")}
        self._change(lambda s: lifecycle.epoch_done(s, epoch=epoch, validation=validation or None,
                                                    now=clock.utc_now()))
        log.info("epoch %d/%d done%s; %s", epoch + 1, epochs,
                 "".join(f", {k}={float(v):.4f}" for k, v in sorted((logs or {}).items())),
                 "checkpoint in S3" if ready else "no checkpoint to sync")

    def _upload_artifacts(self, clients: aws.Clients, result: Any) -> dict:
        """Upload the run directory, subdirectories (tensorboard/) included but not its inputs (data/), run.json
        last; the headline test metrics."""
        log.info("training finished after epoch %d; uploading artifacts", result.epochs_trained)
        _add_cloud_record(Path(result.run_dir) / "run.json", self.status)
        keys = aws.upload_dir(clients.s3, Path(result.run_dir), self.layout.bucket, self.layout.artifact_key,
                              last=("run.json",), skip=(INPUTS_DIR,))
        log.info("artifacts: %s", _summary(k[len(self.layout.artifacts_prefix):] for k in keys))
        metrics = result.metrics if isinstance(result.metrics, dict) else {}
        return headline(metrics.get("test"))

    # ---- end of attempt ----------------------------------------------------------------------------------
    def _finish(self, clients: aws.Clients, end_state: str, fields: dict, logs: AttemptLogs) -> RunnerExit:
        """Record how the attempt ended, notify, ship its log, and scale to 0 once the run is over."""
        metrics = fields.pop("metrics", None)
        if end_state in (lifecycle.FAILED, CRASHED):
            fields["log_tail"] = lifecycle.log_tail(logs.path)
        try:
            status = self._change(lambda s: lifecycle.end_attempt(s, end_state, now=clock.utc_now(), **fields))
        except Exception:
            log.error("could not write the final status:\n%s", traceback.format_exc())
            status = {**self.status, "state": lifecycle.RETRYING if end_state == CRASHED else end_state}
        final = status.get("state")
        detail = status.get("error") or status.get("reason")
        log.info("attempt %d ended %s; run %s%s", status.get("attempt"), end_state, final,
                 f" ({detail})" if detail else "")
        self._notify(clients, final, detail, metrics)
        terminal = final in lifecycle.TERMINAL_STATES
        if terminal and self.settings.asg_name:
            log.info("scaling %s to 0", self.settings.asg_name)
        logs.close()
        logs.upload(clients.s3, status["attempt"])
        if terminal:
            aws.scale_to_zero(clients.autoscaling, self.settings.asg_name)
        return EXIT_FOR_STATE.get(final, RunnerExit.RETRY)

    def _notify(self, clients: aws.Clients, state: str, detail: str | None, metrics: dict | None) -> None:
        from training.cloud.core import notify

        if metrics:
            detail = "test metrics: " + metrics_line(metrics, digits=4, separator=", ")
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

    def _deadline(self, status: dict) -> float | None:
        if not self.settings.max_runtime_hours:
            return None
        attempts = status.get("attempts") or []
        start = clock.parse_time(attempts[0]["started_at"]).timestamp() if attempts else time.time()
        return start + self.settings.max_runtime_hours * 3600


def _on_sigterm(callback: Callable[[], None]) -> Any:
    """Call back on SIGTERM (shutdown without a spot notice); returns the previous handler, or None
    where signals cannot be set (not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda signum, frame: callback())


def _add_cloud_record(run_json: Path, status: dict) -> None:
    """Add the code deployed (gitRef, its commit at synth, allowUnpushedCode) and the attempts (instance, commit,
    times, billable seconds, estimated cost) to run.json."""
    if not run_json.exists():
        return
    info = json.loads(run_json.read_text())
    attempts = status.get("attempts", [])
    costs = [a.get("estimated_cost") for a in attempts]
    info["cloud"] = {
        "run_id": status.get("run_id"),
        "code": status.get("code"),
        "attempts": attempts,
        "billable_seconds": sum(a.get("billable_seconds") or 0 for a in attempts),
        "estimated_cost": round(sum(costs), 6) if costs and None not in costs else None,
    }
    run_json.write_text(json.dumps(info, indent=2, default=str))


def _summary(names: Iterable[str]) -> str:
    """The top-level files by name and each subdirectory as `dir/ (N files)`: tensorboard/ holds many."""
    files: list[str] = []
    folders: dict[str, int] = {}
    for name in names:
        top, sep, _ = name.partition("/")
        if sep:
            folders[top] = folders.get(top, 0) + 1
        else:
            files.append(name)
    return ", ".join(files + [f"{top}/ ({count} file{'' if count == 1 else 's'})" for top, count in folders.items()])


def train_config(args: Sequence[str], *, data: list[str] | None, output_dir: Path, run_id: str,
                 cache_dir: Path | None = None) -> Any:
    """TrainConfig from `python -m training train` flags (the env file's TRAIN_ARGS); the runner sets the output
    directory and run id, the data where the env file's DATA_URI gave some, and the parsed-data cache where the
    flags name none (``cache_dir``, on the instance's disk: a later attempt there reads the data parsed)."""
    try:
        parsed = train_flags.parse_train_flags(args)
    except ConfigError as error:
        raise ConfigError(f"{env.TRAIN_ARGS} {' '.join(args)!r}: {error}") from None
    parsed.output, parsed.run_id = str(output_dir), run_id
    if data is not None:
        parsed.data = data
    if cache_dir is not None and not parsed.cache_dir and not parsed.no_cache:
        parsed.cache_dir = str(cache_dir)
    return train_flags.train_config_from_args(parsed)
