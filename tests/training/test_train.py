"""train(): split, fit, artifacts, interruption and resume."""
import hashlib
import json
import threading
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.training.trained_run import SAMPLE_ROWS
from training.data import load_loans
from training.errors import ConfigError
from training.features import get_feature_set, raw_columns_for
from training.model import ModelConfig
from training.predict import PROBABILITY_COLUMNS, load_model, predict_frame
from training.train import TrainConfig, TrainingInterrupted, class_weight_for, summary_lines, train, validate_config
from training.train_callbacks import TENSORBOARD_DIR

ARTIFACTS = ("model.keras", "metrics.json", "confusion_matrix.png", "history.png", "run.json")
METRIC_KEYS = {"accuracy", "weighted_f1", "macro_f1", "per_grade", "confusion_matrix"}


def test_run_writes_every_artifact(trained_run):
    result, _ = trained_run
    assert result.run_dir.name == "shared-run"
    for name in ARTIFACTS:
        assert (result.run_dir / name).stat().st_size > 0, name


def test_metrics_json_has_the_stable_keys(trained_run):
    result, _ = trained_run
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(result.metrics))
    for split in ("test", "validation"):
        assert METRIC_KEYS <= set(metrics[split])
        assert list(metrics[split]["per_grade"]) == list("ABCDEFG")
    rows = metrics["rows"]
    assert rows["train"] + rows["validation"] + rows["test"] == SAMPLE_ROWS
    assert rows["test"] == pytest.approx(0.15 * SAMPLE_ROWS, abs=2)
    assert sum(map(sum, metrics["test"]["confusion_matrix"])) == rows["test"]


def test_model_beats_the_majority_class_on_held_out_rows(trained_run):
    result, _ = trained_run
    test, majority = result.metrics["test"], result.metrics["baselines"]["majority"]
    assert test["accuracy"] > majority["accuracy"] + 0.05
    assert test["weighted_f1"] > majority["weighted_f1"] + 0.15
    assert test["macro_f1"] > majority["macro_f1"]


def test_the_tuned_peer_is_scored_in_metrics_json_and_its_search_recorded_in_run_json(trained_run):
    result, _ = trained_run
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    info = json.loads((result.run_dir / "run.json").read_text())
    tuned = metrics["baselines"]["hist_gradient_boosting_tuned"]
    assert METRIC_KEYS <= set(tuned) and "search" not in tuned
    assert sum(map(sum, tuned["confusion_matrix"])) == metrics["rows"]["test"]
    search = info["baseline_search"]["hist_gradient_boosting_tuned"]
    assert search["budget"]["configurations"] == len(search["configurations"]) >= 20
    assert search["budget"]["seed"] == info["config"]["seed"]
    assert search["chosen"]["validation_weighted_f1"] == max(t["validation_weighted_f1"]
                                                             for t in search["configurations"])
    report = (result.run_dir / "report.md").read_text()
    assert "| hist_gradient_boosting_tuned |" in report and "chosen on the validation rows from" in report


def test_run_json_records_config_data_fill_and_provenance(trained_run):
    result, lines = trained_run
    info = json.loads((result.run_dir / "run.json").read_text())
    assert info["synthetic"] is True and "SYNTHETIC" in info["note"]
    assert info["config"]["sample"] == SAMPLE_ROWS and info["config"]["features"] == "application"
    assert info["feature_set"]["name"] == "application" and "annual_inc" in info["feature_set"]["numeric"]
    (source,) = info["data"]["files"]
    data_file = result.run_dir / "data" / "synthetic.csv"
    assert source["sha256"] == hashlib.sha256(data_file.read_bytes()).hexdigest()
    assert source["rows"] == info["data"]["rows_read"] == SAMPLE_ROWS
    assert info["data"]["rows_dropped"] == {}
    assert set(info["fill"]["values"]) == set(info["feature_set"]["numeric"])
    assert info["fill"]["values_filled"] and all(n > 0 for n in info["fill"]["values_filled"].values())
    assert {"tensorflow-cpu", "keras", "numpy", "pandas", "scikit-learn"} & set(info["versions"])
    assert info["wall_time_s"] > 0 and info["epochs_trained"] == result.epochs_trained
    assert len(info["history"]["val_loss"]) == result.epochs_trained
    assert any(line.startswith("epoch 1/") for line in lines)
    assert any(line.startswith("missing values filled in ") and line.endswith("run.json (fill.values_filled)")
               for line in lines)
    assert f"read {SAMPLE_ROWS:,} rows from 1 file: synthetic.csv" in lines
    assert info["fill"]["empty_columns"] == [] and max(map(len, lines)) < 300


def test_tensorboard_logs_hold_each_epoch_and_the_test_confusion_matrix(trained_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result, _ = trained_run
    board = result.run_dir / TENSORBOARD_DIR
    tags = {}
    for split in ("train", "validation", "test"):
        events = EventAccumulator(str(board / split))
        events.Reload()
        tags[split] = {tag: [e.step for e in events.Tensors(tag)] for tag in events.Tags()["tensors"]}
    epochs = list(range(1, result.epochs_trained + 1))
    assert tags["train"]["epoch_loss"] == tags["validation"]["epoch_accuracy"] == epochs
    assert tags["test"] == {"confusion_matrix": [result.epochs_trained]}


def test_class_weights_are_balanced_with_one_for_absent_grades():
    weights = class_weight_for(np.array([0, 0, 0, 1]))
    assert weights[0] == pytest.approx(4 / (2 * 3)) and weights[1] == pytest.approx(4 / (2 * 1))
    assert weights[6] == 1.0 and len(weights) == 7


@pytest.mark.parametrize("change", [dict(epochs=0), dict(batch_size=0), dict(sample=5), dict(patience=-1),
                                    dict(max_bad_rows=1.5), dict(run_id="bad/id"), dict(data=[]),
                                    dict(model=ModelConfig(dropout=1.0)),
                                    dict(model=ModelConfig(hidden_units=())),
                                    dict(model=ModelConfig(learning_rate=0)),
                                    dict(model=ModelConfig(ensemble=0)),
                                    dict(model=ModelConfig(bin_encoding="thermometer")),
                                    dict(model=ModelConfig(weight_decay=-1.0)),
                                    dict(model=ModelConfig(ema_momentum=1.0)),
                                    dict(model=ModelConfig(ema_momentum=-0.5)),
                                    dict(strategy="horovod")])
def test_bad_settings_raise_config_error(change):
    with pytest.raises(ConfigError):
        validate_config(TrainConfig(**change))


def test_unknown_feature_set_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="feature set"):
        train(TrainConfig(features="nope", output_dir=tmp_path), log=lambda line: None)


class _StopAfterEpoch(keras.callbacks.Callback):
    def __init__(self, event: threading.Event, epochs: int):
        super().__init__()
        self.event, self.epochs = event, epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            self.event.set()


TUNED_SMALL = ModelConfig(hidden_units=(16,), log_columns="money", quantile_bins=8, bin_encoding="piecewise_linear",
                          embedding_min_vocab=3, ensemble=2, ema_momentum=0.99)   # the tuned preset's layers, small


def _small_config(tmp_path, **changes):
    settings = dict(sample=1000, epochs=4, patience=10, run_id="small", output_dir=tmp_path / "outputs",
                    model=ModelConfig(hidden_units=(16,)), baselines=False)
    return TrainConfig(**{**settings, **changes})


def test_stop_event_raises_training_interrupted_without_artifacts(tmp_path):
    event = threading.Event()
    config = _small_config(tmp_path)
    with pytest.raises(TrainingInterrupted) as caught:
        train(config, stop_event=event, callbacks=[_StopAfterEpoch(event, 1)], log=lambda line: None)
    assert caught.value.last_epoch == 1
    run_dir = tmp_path / "outputs" / "small"
    for name in ARTIFACTS:
        assert not (run_dir / name).exists(), name


@pytest.mark.parametrize("model", ["small", "tuned-small"])
def test_backup_dir_resumes_an_interrupted_run_to_the_configured_epochs(tmp_path, model):
    backup, event, first_log, second_log = tmp_path / "backup", threading.Event(), [], []
    config = _small_config(tmp_path, **({"model": TUNED_SMALL} if model == "tuned-small" else {}))
    with pytest.raises(TrainingInterrupted) as caught:
        train(config, backup_dir=backup, stop_event=event, callbacks=[_StopAfterEpoch(event, 2)],
              log=first_log.append)
    assert caught.value.last_epoch == 2
    assert (backup / "training_metadata.json").is_file()
    assert [line.split(" - ")[0] for line in first_log if line.startswith("epoch ")] == ["epoch 1/4", "epoch 2/4"]

    result = train(config, backup_dir=backup, stop_event=threading.Event(), log=second_log.append)
    assert result.epochs_trained == config.epochs
    assert "resuming from the checkpoint after epoch 2" in second_log
    assert [line.split(" - ")[0] for line in second_log if line.startswith("epoch ")] == ["epoch 3/4", "epoch 4/4"]
    assert len(result.run_info["history"]["loss"]) == config.epochs
    assert (result.run_dir / "model.keras").is_file()
    assert len(list((result.run_dir / TENSORBOARD_DIR / "train").glob("events.out.tfevents.*"))) == 2  # two attempts


def test_ensemble_run_with_class_weights_saves_one_averaging_model(tmp_path):
    config = _small_config(tmp_path, epochs=2, class_weights=True,
                           model=ModelConfig(hidden_units=(16,), ensemble=2, quantile_bins=8,
                                             bin_encoding="piecewise_linear"))
    result = train(config, log=lambda line: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(result.run_dir / "model.keras")
    # predict's load leaves out the optimizer: the members' training state is not the saved model's, and
    # Keras warned about it on every `predict` of a default model
    assert [str(w.message) for w in caught if "optimizer" in str(w.message)] == []
    assert {"m0_grade", "m1_grade", "grade", "piecewise_linear"} <= {layer.name for layer in model.layers}
    assert len(result.run_info["history"]["val_loss"]) == 2
    assert 0 < result.metrics["test"]["weighted_f1"] <= 1
    # --no-baselines (the small runs' setting): no baselines block, and what reads metrics.json copes
    assert "baselines" not in result.metrics and result.run_info["config"]["baselines"] is False
    assert result.run_info["baseline_search"] == {}
    assert "- no baselines computed" in (result.run_dir / "report.md").read_text()
    assert not any("baseline" in line for line in summary_lines(result))


@pytest.mark.parametrize("policy, model", [("mixed_float16", ModelConfig(hidden_units=(16,))),
                                           ("mixed_bfloat16", TUNED_SMALL)], ids=["float16", "bfloat16-tuned"])
def test_gpu_settings_run_unchanged_on_the_cpu_and_restore_the_policy(tmp_path, policy, model):
    """--precision and --strategy mirrored are plain options: the same code path on any device. The run
    computes in 16 bits; what it saves, and what its metrics come from, computes in float32."""
    config = _small_config(tmp_path, epochs=2, precision=policy, strategy="mirrored", batch_size=512, model=model)
    result = train(config, log=lambda line: None)
    assert result.run_info["config"]["precision"] == policy
    assert result.run_info["precision"] == {"policy": policy, "why": "--precision"}
    assert result.run_info["config"]["strategy"] == "mirrored"
    assert keras.mixed_precision.global_policy().name == "float32"
    model = load_model(result.run_dir / "model.keras")
    assert {layer.dtype_policy.name for layer in model.layers} <= {"float32", "float64"}
    records = load_loans(result.run_info["data"]["files"][0]["uri"], raw_columns_for(
        get_feature_set(config.features).columns)).frame
    saved = predict_frame(model, records.head(50))[list(PROBABILITY_COLUMNS)].to_numpy()
    assert saved.dtype == np.float32 and np.allclose(saved.sum(axis=1), 1, atol=1e-5)
    assert 0 < result.metrics["test"]["weighted_f1"] <= 1


REAL_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lendingclub"


@pytest.mark.realdata
@pytest.mark.parametrize("pattern, sample", [("lc_2007_2011_*.csv.gz", 4000), ("raw/*.csv.gz", None)])
def test_short_training_on_real_lending_club_files(tmp_path, pattern, sample):
    files = sorted(REAL_DATA.glob(pattern))
    if not files:
        pytest.skip(f"no real data at {REAL_DATA / pattern} (see docs: ../shared/data/lendingclub/)")
    # the tuned peer's 20-fit search is tested in test_peer_search; here the majority baseline is the yardstick
    config = TrainConfig(data=[str(f) for f in files], sample=sample, epochs=5, patience=5, run_id="real",
                         output_dir=tmp_path, tuned_peer=False)
    lines: list[str] = []
    result = train(config, log=lines.append)
    assert [f["rows"] > 0 for f in result.run_info["data"]["files"]] == [True] * len(files)
    empty = result.run_info["fill"]["empty_columns"]
    assert len([line for line in lines if "entirely empty" in line]) == (1 if empty else 0)
    assert max(map(len, lines)) < 300   # expected conditions are one short line each; details in run.json
    importance = result.metrics["permutation_importance"]
    assert all(r["importance"] == 0 for r in importance if r.get("empty"))
    test, majority = result.metrics["test"], result.metrics["baselines"]["majority"]
    assert test["accuracy"] > majority["accuracy"] + 0.05
    assert test["weighted_f1"] > majority["weighted_f1"]


def test_the_load_step_reads_a_data_file_parsed_once(tmp_path):
    """train's load goes through the parsed-data cache of config.cache_dir: the second run reads the entry."""
    import pandas as pd

    from training import synthetic
    from training.features import get_feature_set
    from training.train import _load

    path = synthetic.write_raw_csv(tmp_path / "loans.csv.gz", 200, seed=5)
    config = TrainConfig(data=[str(path)], cache_dir=tmp_path / "cache")
    loads, logs = [], []
    for _ in range(2):
        logs.append([])
        loads.append(_load(config, get_feature_set("application"), tmp_path, logs[-1].append))
    assert not any("(cached:" in line for line in logs[0])
    assert f"read {path} (cached: {tmp_path / 'cache' / 'parsed'})" in logs[1]
    pd.testing.assert_frame_equal(loads[1].frame, loads[0].frame, check_exact=True)
    assert loads[1].dropped == loads[0].dropped and loads[1].files == loads[0].files
