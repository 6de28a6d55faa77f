"""The Keras model: inputs, architecture, and the models build_model makes from one set of layers."""
import keras
import numpy as np
import pytest

from tests.training.model_inputs import DERIVED, TINY, TINY_FILL, build_tiny, record_frame, tiny_frame
from training.datasets import frame_to_inputs, input_kinds
from training.features import add_derived_features, fit_fill_values, raw_columns_for
from training.fitting import predict_proba
from training.model import ModelConfig, build_model

tiny = pytest.fixture(tiny_frame, scope="module", name="tiny")
tiny_built = pytest.fixture(build_tiny, scope="module", name="tiny_built")


def test_one_named_input_per_feature_column_with_its_dtype(tiny_built):
    for model in (tiny_built.inference, tiny_built.feature_model):   # TINY has no derived column: the same inputs
        numeric, text = input_kinds(model)
        assert sorted(numeric) == ["dti", "fico", "term"] and text == ["home"]
        assert [t.shape for t in model.inputs] == [(None, 1)] * 4
        assert model.output_shape == (None, 7)


def test_default_architecture_is_the_reference_network(tiny_built):
    model = tiny_built.inference
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [100, 60, 7]
    assert [d.activation.__name__ for d in dense] == ["relu", "relu", "softmax"]
    assert all(isinstance(d.kernel_constraint, keras.constraints.MaxNorm) and d.kernel_constraint.max_value == 3
               for d in dense)
    dropout = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [d.rate for d in dropout] == [0.2, 0.2]
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-3)


def test_width_depth_dropout_and_learning_rate_are_configurable(tiny):
    config = ModelConfig(hidden_units=(32, 16, 8), dropout=0.0, learning_rate=0.01)
    model = build_model(TINY, tiny, TINY_FILL, config).inference
    assert [d.units for d in model.layers if isinstance(d, keras.layers.Dense)] == [32, 16, 8, 7]
    assert not [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert model.optimizer.learning_rate.numpy() == pytest.approx(0.01)


def test_the_models_share_one_set_of_layers(tiny_built, tiny):
    built = tiny_built
    tower = built.head.layers[1:]                                 # after its Input
    assert all(any(layer is mine for mine in built.inference.layers) for layer in tower)
    assert all(any(layer is mine for mine in built.feature_model.layers) for layer in tower)
    assert built.members is None and built.per_batch is built.feature_model
    assert built.head.batch_rows == 32 and built.head.optimizer is built.inference.optimizer
    assert not built.preprocess.trainable_weights
    inputs = {k: keras.ops.convert_to_tensor(v) for k, v in frame_to_inputs(tiny, built.preprocess).items()}
    matrix = keras.ops.convert_to_numpy(built.preprocess(inputs))
    before = predict_proba(built.inference, tiny, batch_size=64)
    np.testing.assert_allclose(built.head.predict(matrix, verbose=0), before, atol=1e-6)
    dense = built.head.get_layer("dense_0")
    dense.kernel.assign(dense.kernel * 0.5)                       # a change through the head ...
    after = predict_proba(built.inference, tiny, batch_size=64)
    assert not np.allclose(before, after)                         # ... is a change of the saved model
    np.testing.assert_array_equal(after, predict_proba(built.feature_model, tiny, batch_size=64))


def test_the_inference_model_takes_the_raw_columns_and_derives_the_others():
    records = record_frame()
    derived = add_derived_features(records)
    keras.utils.set_random_seed(1)
    built = build_model(DERIVED, derived, fit_fill_values(derived, DERIVED))
    assert sorted(input_kinds(built.inference)[0] + input_kinds(built.inference)[1]) == sorted(
        raw_columns_for(DERIVED.columns))
    assert sorted(input_kinds(built.feature_model)[0]) == sorted(DERIVED.numeric)
    np.testing.assert_array_equal(predict_proba(built.inference, records, batch_size=50),
                                  predict_proba(built.feature_model, derived, batch_size=50))


def test_embeddings_and_ensemble_members_learn_in_the_head_from_the_frozen_matrix(tiny):
    """What learns nothing is the preprocess model (computed once); the embeddings take its index columns
    in the head, and an ensemble's head has one output per member, as its per-batch members model has."""
    keras.utils.set_random_seed(3)
    built = build_model(TINY, tiny, TINY_FILL, ModelConfig(hidden_units=(8,), embedding_min_vocab=2, ensemble=3))
    assert not built.preprocess.trainable_weights
    embedding = built.head.get_layer("embed_home")
    assert embedding is built.inference.get_layer("embed_home") and embedding.trainable_weights
    assert len(built.head.outputs) == len(built.members.outputs) == 3 and built.per_batch is built.members
    assert built.head.optimizer is built.members.optimizer is built.inference.optimizer
    inputs = frame_to_inputs(tiny, built.preprocess)
    matrix = keras.ops.convert_to_numpy(built.preprocess(inputs))
    index = np.unique(matrix[:, -1])     # the last column: home's StringLookup index (OOV 0, then its vocabulary)
    assert set(index) <= set(range(embedding.input_dim)) and len(index) > 1
    members = [keras.ops.convert_to_numpy(m) for m in built.head(matrix)]
    np.testing.assert_allclose(np.mean(members, axis=0), predict_proba(built.inference, tiny, batch_size=64),
                               rtol=1e-5, atol=1e-6)
    single = build_model(TINY, tiny, TINY_FILL, ModelConfig(hidden_units=(8,)))
    assert single.members is None and len(single.head.outputs) == 1


