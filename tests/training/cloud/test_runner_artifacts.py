"""The runner uploads the whole run directory, tensorboard/ included, and `pull` brings all of it back: a stand-in
for training (no model is trained), the moto server and the fake metadata service."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.training.cloud.fake_imds import FakeImds
from tests.training.cloud.moto_run import make_run
from training import tf_quiet
from training.cloud import control, control_view, gpu
from training.cloud.core.lifecycle import RunnerExit
from training.cloud.run_settings import load_settings
from training.cloud.runner import Runner

RUN_FILES = {
    "model.keras": b"MODEL",
    "metrics.json": json.dumps({"test": {"accuracy": 0.5, "weighted_f1": 0.4}}).encode(),
    "run.json": b"{}",
    "tensorboard/train/events.out.tfevents.1.host.1.v2": b"TRAIN-EVENTS",
    "tensorboard/validation/events.out.tfevents.1.host.1.v2": b"VALIDATION-EVENTS",
    "tensorboard/evaluation/events.out.tfevents.2.host.1.v2": b"IMAGE-EVENTS",
}


def write_run_dir(run_dir: Path) -> None:
    for name, body in RUN_FILES.items():
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_bytes(body)


@pytest.mark.slow  # the runner imports training.train, and with it TensorFlow
def test_the_runner_uploads_the_run_directory_with_its_subdirectories(cloud, tmp_path, monkeypatch):
    loaded = []
    monkeypatch.setattr(tf_quiet, "load_tensorflow", lambda: loaded.append(True))
    monkeypatch.setattr(gpu, "check_gpu", lambda *_: None)  # it would import TensorFlow

    def train(config, **_):
        run_dir = Path(config.output_dir) / config.run_id
        write_run_dir(run_dir)
        (run_dir / "data").mkdir()
        (run_dir / "data" / "synthetic.csv").write_text("id,grade\n")  # train's sample: an input, not uploaded
        return SimpleNamespace(run_dir=run_dir, epochs_trained=3, metrics=json.loads(RUN_FILES["metrics.json"]))

    with FakeImds() as imds:
        env_file = cloud.write_env_file(tmp_path / "attempt.env", "tb", imds.url, tmp_path / "work",
                                        TRAIN_ARGS="--epochs 3")
        assert Runner(load_settings(env_file, environ={}), train_fn=train).run() == RunnerExit.SUCCEEDED
    assert loaded == [True]  # TensorFlow is loaded quietly before the attempt needs it
    prefix = "runs/tb/artifacts/"
    keys = cloud.keys(prefix)
    assert sorted(k[len(prefix):] for k in keys) == sorted(RUN_FILES)
    assert cloud.read(prefix + "tensorboard/validation/events.out.tfevents.1.host.1.v2") == b"VALIDATION-EVENTS"
    run_json = json.loads(cloud.read(prefix + "run.json"))
    assert run_json["cloud"]["run_id"] == "tb"  # the cloud record is added before the upload
    log_text = cloud.read("runs/tb/logs/attempt-0001.log").decode()
    assert "artifacts: metrics.json, model.keras, run.json, tensorboard/ (3 files)" in log_text


@pytest.fixture()
def run(aws):
    return make_run(aws)


def test_pull_brings_back_every_subdirectory(run, tmp_path):
    s3 = run.client("s3")
    for name, body in RUN_FILES.items():
        s3.put_object(Bucket=run.bucket, Key=run.layout.artifact_key(name), Body=body)
    s3.put_object(Bucket=run.bucket, Key=run.layout.artifacts_prefix + "tensorboard/", Body=b"")  # a folder marker
    pulled = control.pull(run.session, dest=tmp_path / "outputs")
    target = tmp_path / "outputs" / "run-1"
    got = {p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert got == RUN_FILES
    assert {p.relative_to(target).as_posix(): size for p, size in pulled.files.items()} == \
        {name: len(body) for name, body in RUN_FILES.items()}
    lines = control_view.pull_lines(pulled)
    assert lines[0] == f"downloaded 6 files to {target}/"
    assert "  tensorboard/train/events.out.tfevents.1.host.1.v2  (12 bytes)" in lines


def test_pull_into_a_file_is_one_line(run, tmp_path):
    from training.errors import DataError

    run.client("s3").put_object(Bucket=run.bucket, Key=run.layout.artifact_key("model.keras"), Body=b"M")
    (tmp_path / "run-1").write_text("in the way")
    with pytest.raises(DataError, match=r"^cannot write the artifacts to .*run-1/: .*choose another --dest$"):
        control.pull(run.session, dest=tmp_path)
