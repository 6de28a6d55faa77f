"""Fitting a built model (the head, the ensemble's members, or the feature model) and its probabilities."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.model_inputs import MONEY, MONEY_FILL, TINY, TINY_FILL, money_frame, tiny_frame
from training import fitting
from training.datasets import frame_to_inputs, make_dataset
from training.fitting import feature_matrix, fit, predict_proba
from training.host_arrays import shares_memory_safely
from training.model import ModelConfig, build_model
from training.train_callbacks import EpochProgress, fit_callbacks

tiny = pytest.fixture(tiny_frame, scope="module", name="tiny")


def _fit(built, frame, labels, *, epochs=1, batch_size=32, class_weight=None, log=None, callbacks=()):
    history = keras.callbacks.History()
    fit(built, train_frame=frame, y_train=labels, val_frame=frame.iloc[:100], y_val=labels[:100],
        batch_size=batch_size, epochs=epochs, seed=1, strategy=None, class_weight=class_weight,
        callbacks=[*callbacks, history], log=log or (lambda line: None))
    return history.history


def _signal(tiny):
    """Grades a small network learns from two of the tiny frame's columns."""
    return np.where(tiny["dti"] > 20, 1, 0) + np.where(tiny["home"] == "OWN", 2, 0)


def test_a_model_learns_a_signal_through_its_head(tiny):
    keras.utils.set_random_seed(0)
    labels = _signal(tiny)
    built = build_model(TINY, tiny, TINY_FILL, ModelConfig(learning_rate=0.01), batch_size=32)
    lines: list[str] = []
    history = _fit(built, tiny, labels, epochs=15, log=lines.append)
    assert lines == [next(line for line in lines if line.startswith("features computed once: "))]
    assert "columns for 400 + 100 rows" in lines[0] and len(history["val_loss"]) == 15
    accuracy = (predict_proba(built.inference, tiny, batch_size=64).argmax(axis=1) == labels).mean()
    assert accuracy > 0.9


def test_the_feature_matrix_is_one_aligned_float32_matrix_filled_slice_by_slice(tiny, monkeypatch):
    built = build_model(TINY, tiny, TINY_FILL, batch_size=32)
    whole = keras.ops.convert_to_numpy(built.preprocess(frame_to_inputs(tiny, built.preprocess), training=False))
    monkeypatch.setattr(fitting, "FEATURE_BATCH_ROWS", 64)     # 400 rows: 7 slices, the last one short
    matrix = feature_matrix(built.preprocess, tiny, whole.shape[1])
    assert matrix.dtype == np.float32 and shares_memory_safely(matrix)   # a tensor reads it in place
    np.testing.assert_array_equal(matrix, whole)


def test_the_head_path_builds_each_split_s_matrix_once_and_no_frame_dataset(tiny, monkeypatch):
    built = build_model(TINY, tiny, TINY_FILL, batch_size=32)
    made: list[int] = []
    monkeypatch.setattr(fitting, "feature_matrix",
                        lambda model, frame, width: made.append(len(frame)) or feature_matrix(model, frame, width))
    monkeypatch.setattr(fitting, "make_dataset", lambda *a, **k: pytest.fail("no dataset of a frame's inputs"))
    _fit(built, tiny, np.zeros(len(tiny), int), epochs=2)
    assert made == [400, 100]


def test_the_head_on_the_frozen_matrix_trains_as_the_preprocessing_in_every_step(tiny, monkeypatch):
    """Embeddings, bins and an ensemble (the tuned preset's layers, small): the same weights after two epochs
    either way, from the same seed (the same batches, dropout masks and updates)."""
    config = ModelConfig(hidden_units=(16,), quantile_bins=8, bin_encoding="piecewise_linear",
                         embedding_min_vocab=2, ensemble=2)
    labels = (tiny["fico"].fillna(700).to_numpy() > 700).astype(int)
    weights = []
    for budget in (fitting.FROZEN_MATRIX_BYTES, 0):
        monkeypatch.setattr(fitting, "FROZEN_MATRIX_BYTES", budget)
        keras.utils.set_random_seed(0)
        built = build_model(TINY, tiny, TINY_FILL, config, batch_size=32)
        before = built.inference.get_weights()
        _fit(built, tiny, labels, epochs=2)
        weights.append(built.inference.get_weights())
    assert not np.allclose(before[-2], weights[0][-2])      # trained
    for head, per_batch in zip(*weights):
        np.testing.assert_allclose(head, per_batch, rtol=1e-5, atol=1e-6)


def test_a_frozen_matrix_over_the_budget_leaves_the_features_to_every_step(tiny, monkeypatch):
    built = build_model(TINY, tiny, TINY_FILL, batch_size=32)
    width = built.head.input_shape[1]
    monkeypatch.setattr(fitting, "FROZEN_MATRIX_BYTES", 500 * width * 4 - 1)   # 400 + 100 rows: one byte over
    monkeypatch.setattr(fitting, "feature_matrix", lambda *a: pytest.fail("no frozen matrix over the budget"))
    monkeypatch.setattr(built.head, "fit", lambda *a, **k: pytest.fail("the head takes the frozen matrix"))
    lines: list[str] = []
    history = _fit(built, tiny, np.zeros(len(tiny), int), epochs=2, log=lines.append)
    assert len(history["loss"]) == 2
    assert lines == [f"features computed in every step: the frozen matrix of {500 * width * 4 / 2**30:.1f} GiB "
                     f"would be over {(500 * width * 4 - 1) / 2**30:.0f} GiB"]


def test_the_head_is_fitted_with_the_batch_size_it_was_built_for(tiny):
    built = build_model(TINY, tiny, TINY_FILL, batch_size=64)
    with pytest.raises(ValueError, match="built for batches of 64 rows, not 32"):
        _fit(built, tiny, np.zeros(len(tiny), int))


def test_an_embedding_learns_through_the_head(tiny):
    keras.utils.set_random_seed(0)
    built = build_model(TINY, tiny, TINY_FILL, ModelConfig(hidden_units=(8,), embedding_min_vocab=2), batch_size=32)
    embedding = built.inference.get_layer("embed_home")
    before = embedding.get_weights()[0].copy()
    _fit(built, tiny, (tiny["fico"].fillna(700).to_numpy() > 700).astype(int), epochs=2)
    assert not np.allclose(before, embedding.get_weights()[0])   # learned through the whole model


def test_ensemble_members_learn_on_their_own_and_the_saved_model_averages_them(tmp_path):
    frame = money_frame()
    keras.utils.set_random_seed(0)
    config = ModelConfig(hidden_units=(8,), ensemble=3, weight_decay=1e-4)
    built = build_model(MONEY, frame, MONEY_FILL, config, batch_size=32)
    model, view = built.inference, built.members
    assert len(view.outputs) == 3 and isinstance(model.optimizer, keras.optimizers.AdamW)
    labels = (frame["fico"].to_numpy() > 750).astype(int)
    before = [w.copy() for w in model.get_layer("m1_dense_0").get_weights()]
    history = _fit(built, frame, labels, class_weight={g: 1.0 + g for g in range(7)})
    assert not np.allclose(before[0], model.get_layer("m1_dense_0").get_weights()[0])  # shared layers trained
    assert {"m0_grade_loss", "m2_grade_loss", "val_loss"} <= set(history)               # one loss per member
    members = np.mean(view.predict(make_dataset(frame, view, batch_size=128), verbose=0), axis=0)
    probs = predict_proba(model, frame, batch_size=128)
    np.testing.assert_allclose(probs, members, rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(predict_proba(keras.models.load_model(tmp_path / "m.keras"), frame, batch_size=128),
                               probs, rtol=1e-5, atol=1e-6)


def _fit_averaged(tiny, momentum: float, labels, *, epochs: int):
    """A fit with the optimizer's weight averages (ModelConfig.ema_momentum) and train's callbacks."""
    keras.utils.set_random_seed(0)
    built = build_model(TINY, tiny, TINY_FILL, ModelConfig(learning_rate=0.01, ema_momentum=momentum), batch_size=32)
    progress = EpochProgress(lambda line: None, epochs, None)
    callbacks = fit_callbacks(progress, patience=epochs, lr_schedule="constant", backup_dir=None, stop_event=None,
                              weight_averages=True)
    _fit(built, tiny, labels, epochs=epochs, callbacks=callbacks)
    return built, progress.as_dict()


def test_validation_judges_the_weight_averages(tiny):
    """Averages over a very long window barely move from the first step's weights: validation on them stays
    where it starts while the steps' own loss falls."""
    _, history = _fit_averaged(tiny, 0.99999, _signal(tiny), epochs=6)
    assert history["loss"][0] - history["loss"][-1] > 0.2
    assert max(history["val_loss"]) - min(history["val_loss"]) < 0.01


def test_the_model_keeps_the_best_epoch_s_weight_averages(tiny):
    labels = _signal(tiny)
    built, history = _fit_averaged(tiny, 0.9, labels, epochs=8)
    probabilities = predict_proba(built.inference, tiny.iloc[:100], batch_size=100)   # _fit's validation rows
    loss = float(np.mean(keras.losses.sparse_categorical_crossentropy(labels[:100], probabilities)))
    assert len(history["val_loss"]) == 8
    assert loss == pytest.approx(min(history["val_loss"]), rel=1e-4)
    assert isinstance(built.inference.optimizer, keras.optimizers.Adam) and built.inference.optimizer.use_ema


def test_probabilities_do_not_depend_on_the_batch_size(tiny):
    built = build_model(TINY, tiny, TINY_FILL)
    whole = predict_proba(built.inference, tiny, batch_size=1000)
    assert whole.shape == (len(tiny), 7) and np.allclose(whole.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(predict_proba(built.inference, tiny, batch_size=7), whole, atol=1e-6)
    assert predict_proba(built.inference, tiny.iloc[:0], batch_size=7).shape == (0, 7)


@pytest.mark.parametrize("config, budget", [(ModelConfig(), fitting.FROZEN_MATRIX_BYTES),
                                            (ModelConfig(embedding_min_vocab=2, ensemble=2), 0)],
                         ids=["head", "members per batch"])
def test_every_epoch_is_one_pass_from_one_training_iterator(tiny, config, budget, monkeypatch):
    """An iterator per epoch instantiates the dataset's functions again (tens of ms for a model's inputs):
    the training dataset is iterated once per fit, each epoch taking one pass of batches."""
    monkeypatch.setattr(fitting, "FROZEN_MATRIX_BYTES", budget)
    built = build_model(TINY, tiny, TINY_FILL, config, batch_size=32)
    trained = built.head if budget else built.per_batch
    fitted: list = []
    real_fit = trained.fit
    monkeypatch.setattr(trained, "fit", lambda x, **kw: fitted.append((x, kw)) or real_fit(x, **kw))
    iterated: list = []
    real_iter = tf.data.Dataset.__iter__
    monkeypatch.setattr(tf.data.Dataset, "__iter__", lambda self: iterated.append(self) or real_iter(self))
    steps: list[int] = []
    count = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: steps.append(0),
                                           on_train_batch_end=lambda batch, logs: steps.__setitem__(-1, steps[-1] + 1))
    fit(built, train_frame=tiny, y_train=np.zeros(len(tiny), int), val_frame=tiny.iloc[:100],
        y_val=np.zeros(100, int), batch_size=32, epochs=3, seed=1, strategy=None, class_weight=None,
        callbacks=[count], log=lambda line: None)
    (train, settings), = fitted
    per_pass = 1 if budget else -(-len(tiny) // 32)   # the head: 64 batches per element
    assert settings["steps_per_epoch"] == per_pass and steps == [per_pass] * 3
    assert settings["validation_steps"] == 1   # 100 rows in one batch (at least VALIDATION_BATCH_ROWS per step)
    assert sum(dataset is train for dataset in iterated) == 1
