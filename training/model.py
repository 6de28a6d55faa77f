"""The Keras model: its settings (ModelConfig, MODEL_PRESETS) and build_model.

build_model builds one network, preprocessing inside (``training.preprocessing``), and returns the models
made of its layers (BuiltModel): the inference model, saved as ``model.keras``, takes the columns of a parsed
record (derived columns are computed inside: ``training.layers``) and returns the seven grade
probabilities; the others share its layers and are what training fits and assesses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import keras
import numpy as np
import pandas as pd

from training.fast_head import ChunkedHead
from training.features import DERIVATIONS, raw_columns_for
from training.layers import DerivedColumn
from training.preprocessing import Preprocessing

if TYPE_CHECKING:
    from training.features import FeatureSet, FillValues

N_GRADES = 7
LOSS = "sparse_categorical_crossentropy"


@dataclass
class ModelConfig:
    """Architecture and optimiser settings (defaults: the 2017 reference network)."""

    hidden_units: tuple[int, ...] = (100, 60)
    dropout: float = 0.2
    max_norm: float = 3.0
    learning_rate: float = 1e-3
    # optional encoders (training.encoders; docs/model-card.md), all off by default:
    log_columns: tuple[str, ...] | str = ()   # signed log1p before normalisation; "money" = encoders.MONEY_COLUMNS
    quantile_bins: int = 0                    # >0: numeric columns also encoded by N training quantile bins
    bin_encoding: str = "one_hot"             # how the bins are encoded: "one_hot" or "piecewise_linear" (PLE)
    embedding_min_vocab: int = 0              # >0: categorical columns with more values get an embedding
    batch_norm: bool = False                  # BatchNormalization after each hidden Dense
    lr_schedule: str = "constant"             # "plateau": ReduceLROnPlateau on val_loss (train.py)
    weight_decay: float = 0.0                 # >0: AdamW with this decoupled weight decay instead of Adam
    ensemble: int = 1                         # >1: N networks on the shared preprocessing, probabilities averaged
    ema_momentum: float = 0.0                 # >0: the weights' exponential moving average over the steps (this
                                              # momentum per step): validation, early stopping and model.keras
                                              # use the averages (train_callbacks.fit_callbacks)


#: Named model settings: "reference" = the 2017 network; "tuned" = the settings that beat gradient boosting on
#: application features (docs/model-card.md). training.presets pairs them with epochs, patience and batch size.
MODEL_PRESETS: dict[str, ModelConfig] = {
    "reference": ModelConfig(),
    "tuned": ModelConfig(hidden_units=(256, 128), dropout=0.3, log_columns="money", quantile_bins=64,
                         bin_encoding="piecewise_linear", embedding_min_vocab=10, lr_schedule="plateau",
                         ensemble=4, ema_momentum=0.99),
}


@dataclass(frozen=True)
class BuiltModel:
    """The models of one network, built from the same layers: fitting one trains them all.

    ``inference`` (saved as model.keras) takes the parsed record columns (``training.layers`` says in what
    form) and computes the derived columns itself; the others take the feature set's columns, derived ones
    included, as training and assessment have them (``training.features.add_derived_features``).
    """

    inference: keras.Model          # parsed record columns -> probabilities
    feature_model: keras.Model      # the feature set's columns -> probabilities (compiled)
    preprocess: keras.Model         # the feature set's columns -> the frozen matrix (Preprocessing.frozen: no
                                    # weights, the same values every epoch, so it can be computed once)
    head: ChunkedHead               # the frozen matrix -> probabilities, or each member's (ensemble > 1, one
                                    # loss per member) (compiled): the embeddings and the network
    members: keras.Model | None     # the feature set's columns -> each member's probabilities, one loss per
                                    # member (compiled; ensemble > 1)

    @property
    def per_batch(self) -> keras.Model:
        """What fitting trains when the frozen matrix is not computed once: the preprocessing runs in every
        step (the ensemble's members, else the feature model)."""
        return self.members if self.members is not None else self.feature_model


def build_model(feature_set: FeatureSet, train_frame: pd.DataFrame, fill: FillValues,
                config: ModelConfig | None = None, *, batch_size: int = 256) -> BuiltModel:
    """The compiled models of one network; statistics (fill, mean/variance, vocabularies) come from
    ``train_frame``; ``batch_size`` is the head's rows per optimizer step."""
    config = config or ModelConfig()
    preprocessing = Preprocessing(feature_set, train_frame, fill, config)
    towers = [_tower(config, "" if config.ensemble == 1 else f"m{m}_") for m in range(config.ensemble)]
    average = keras.layers.Average(name="grade", dtype="float32") if config.ensemble > 1 else None

    def network(features: keras.KerasTensor) -> tuple[keras.KerasTensor, list[keras.KerasTensor]]:
        members = [_chain(tower, features) for tower in towers]
        return (average(members) if average else members[0]), members

    columns = preprocessing.inputs(list(feature_set.columns))
    frozen = preprocessing.frozen(columns)
    probabilities, members = network(preprocessing.features(frozen))
    optimizer = _optimizer(config)    # one for all the models (the same variables): saved with model.keras
    feature_model = _compiled(keras.Model(columns, probabilities, name="spotgrade_features"), optimizer)

    records = preprocessing.inputs(raw_columns_for(feature_set.columns))
    derived = {c: DerivedColumn(c, name=f"derive_{c}")([records[i] for i in DERIVATIONS[c].inputs])
               for c in feature_set.columns if c in DERIVATIONS}
    inference_output, _ = network(preprocessing({**records, **derived}))
    inference = _compiled(keras.Model(records, inference_output, name="spotgrade"), optimizer)

    preprocess = keras.Model(columns, _joined(frozen), name="spotgrade_preprocess")
    matrix = keras.Input(shape=(sum(_width(part) for part in frozen),), dtype="float32", name="frozen_matrix")
    _, head_members = network(preprocessing.features(_split(matrix, frozen)))
    head = ChunkedHead(matrix, head_members if config.ensemble > 1 else head_members[0], batch_rows=batch_size,
                       name="spotgrade_head")
    member_model = None
    if config.ensemble > 1:
        # each member with its own loss: a loss on the average lets members co-adapt, which scored worse
        # (docs/model-card.md)
        member_model = keras.Model(columns, members, name="spotgrade_members")
        for model in (head, member_model):
            model.compile(optimizer=optimizer, loss=[LOSS] * config.ensemble)
    else:
        _compiled(head, optimizer)
    return BuiltModel(inference=inference, feature_model=feature_model, preprocess=preprocess, head=head,
                      members=member_model)


def _width(part: keras.KerasTensor) -> int:
    return int(part.shape[-1])


def _joined(frozen: list[keras.KerasTensor]) -> keras.KerasTensor:
    """The frozen parts as one float32 matrix (an embedded category's lookup index as a float: exact)."""
    parts = [part if part.dtype == "float32" else keras.ops.cast(part, "float32") for part in frozen]
    return keras.layers.Concatenate(name="frozen_features")(parts) if len(parts) > 1 else parts[0]


def _split(matrix: keras.KerasTensor, frozen: list[keras.KerasTensor]) -> list[keras.KerasTensor]:
    """The frozen matrix's columns of each part again (an index column is cast back by its embedding)."""
    ends = np.cumsum([_width(part) for part in frozen])
    return [matrix[:, int(end) - _width(part):int(end)] for part, end in zip(frozen, ends)]


def _compiled(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> keras.Model:
    model.compile(optimizer=optimizer, loss=LOSS, metrics=["accuracy"])
    return model


def _chain(layers: list[keras.layers.Layer], x: keras.KerasTensor) -> keras.KerasTensor:
    for layer in layers:
        x = layer(x)
    return x


def _tower(config: ModelConfig, prefix: str) -> list[keras.layers.Layer]:
    """The hidden layers and the softmax head of one network (``prefix`` names the ensemble member)."""
    layers: list[keras.layers.Layer] = []
    for i, units in enumerate(config.hidden_units):
        layers.append(keras.layers.Dense(units, activation=None if config.batch_norm else "relu",
                                         name=f"{prefix}dense_{i}",
                                         kernel_constraint=keras.constraints.MaxNorm(config.max_norm)))
        if config.batch_norm:
            layers += [keras.layers.BatchNormalization(name=f"{prefix}batch_norm_{i}"),
                       keras.layers.Activation("relu", name=f"{prefix}relu_{i}")]
        if config.dropout > 0:
            layers.append(keras.layers.Dropout(config.dropout, name=f"{prefix}dropout_{i}"))
    layers.append(keras.layers.Dense(N_GRADES, activation="softmax", name=f"{prefix}grade", dtype="float32",
                                     kernel_constraint=keras.constraints.MaxNorm(config.max_norm)))
    return layers


def _optimizer(config: ModelConfig) -> keras.optimizers.Optimizer:
    averaging = {"use_ema": True, "ema_momentum": config.ema_momentum} if config.ema_momentum > 0 else {}
    if config.weight_decay > 0:
        return keras.optimizers.AdamW(learning_rate=config.learning_rate, weight_decay=config.weight_decay,
                                      **averaging)
    return keras.optimizers.Adam(learning_rate=config.learning_rate, **averaging)
