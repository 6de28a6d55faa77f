"""A model's categorical columns looked up once per distinct value: the model cut after its StringLookup layers.

A model turns each categorical input into text (``training.layers.TextCategory`` / ``NumberCategory``) and looks
it up (a StringLookup: a one-hot block, or the index an embedding takes), row by row, on string tensors. Both
depend on the value alone, so :class:`LookupCut` computes them on each column's distinct values (a few dozen) and
gathers the rows' blocks by their codes; the rest of the model is a function (``keras.Function``) of the other
inputs and the lookups' outputs: the same layers, the same weights, the same probabilities. Building the string
tensors and looking every row up cost a fifth of a prediction call (docs/performance.md).

:func:`lookup_cut` returns None for a graph of another shape (a categorical input that feeds more than its text
layer, a text input without a lookup): the model is then called on all its inputs.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Sequence

import keras
import numpy as np
import pandas as pd

from training.datasets import distinct_texts, numeric_matrix
from training.layers import NumberCategory, TextCategory

#: distinct values whose lookup output a column keeps (a category has tens; values beyond are looked up each call)
KEPT_VALUES = 10_000
_MISSING = None   # the key of a missing value (NaN is not equal to itself)


@dataclass(frozen=True)
class CutColumn:
    """One categorical input: its text layer and its lookup, called once per distinct value (kept for the next
    calls: a single record looks nothing up again)."""
    name: str
    text: keras.layers.Layer          # TextCategory (string input) or NumberCategory (float64 input)
    lookup: keras.layers.StringLookup
    outputs: dict = field(default_factory=dict, compare=False)   # distinct value -> its lookup output

    def codes_and_table(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(each row's code, the lookup's output per code): row i's block is ``table[codes[i]]``; code -1 (a missing
        value) picks the table's last row."""
        if isinstance(self.text, NumberCategory):
            numbers = numeric_matrix(frame, [self.name])[:, 0]      # non-finite numbers are NaN, as the model gets
            codes, uniques = pd.factorize(numbers, use_na_sentinel=True)
            values = [*np.asarray(uniques, dtype=np.float64).tolist(), _MISSING]
        else:
            codes, labels = distinct_texts(frame[self.name])
            values = [*labels, _MISSING]
        outputs = self.outputs
        new = [v for v in values if v not in outputs]
        if new:
            looked_up = dict(zip(new, self._look_up(new)))
            if len(outputs) + len(new) <= KEPT_VALUES:
                outputs.update(looked_up)
            else:
                outputs = {**outputs, **looked_up}
        return codes, np.stack([outputs[v] for v in values])

    def _look_up(self, values: list) -> np.ndarray:
        """The text layer and the lookup on ``values`` (numbers or text; _MISSING as the model's missing value)."""
        if isinstance(self.text, NumberCategory):
            column = np.array([np.nan if v is _MISSING else v for v in values], dtype=np.float64)
        else:
            column = np.array(["" if v is _MISSING else v for v in values], dtype=object)
        return keras.ops.convert_to_numpy(self.lookup(self.text(column.reshape(-1, 1))))


@dataclass(frozen=True)
class LookupCut:
    model: keras.Function         # the numeric inputs (one (rows, 1) tensor each), then each column's lookup output,
    #                               to the model's outputs: the same layers
    numeric: list[str]            # the numeric inputs, in the cut model's order
    columns: list[CutColumn]      # the categorical inputs, in the cut model's order

    def tables(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """(the numeric inputs' float64 matrix, each column's codes and table) for the frame's rows."""
        return numeric_matrix(frame, self.numeric), [c.codes_and_table(frame) for c in self.columns]

    @staticmethod
    def blocks(tables: Sequence[tuple[np.ndarray, np.ndarray]], rows: slice) -> list[np.ndarray]:
        """Each column's lookup output for the frame's ``rows``."""
        return [table[codes[rows]] for codes, table in tables]


_CUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_NONE = object()


def lookup_cut(model: keras.Model) -> LookupCut | None:
    """The model's :class:`LookupCut` (built once per model), or None where its graph has another shape."""
    cached = _CUTS.get(model)
    if cached is None:
        cached = _CUTS[model] = _build(model) or _NONE
    return None if cached is _NONE else cached


def _build(model: keras.Model) -> LookupCut | None:
    consumers: dict[int, list] = {}            # id(tensor) -> the operations of this graph that take it
    lookups = []                               # (the lookup's node, its layer) in this graph
    for operation, node in _nodes(model.outputs):
        for tensor in node.input_tensors:
            consumers.setdefault(id(tensor), []).append(operation)
        if isinstance(operation, keras.layers.StringLookup):
            lookups.append((node, operation))
    columns, outputs, cut_inputs = [], [], set()
    for node, lookup in lookups:
        (text_tensor,) = node.input_tensors
        text_layer, text_node = _producer(text_tensor)
        if not isinstance(text_layer, (TextCategory, NumberCategory)) or consumers[id(text_tensor)] != [lookup]:
            return None
        (raw,) = text_node.input_tensors
        if not any(raw is t for t in model.inputs) or consumers[id(raw)] != [text_layer]:
            return None
        columns.append(CutColumn(_name(raw), text_layer, lookup))
        outputs.append(node.output_tensors[0])
        cut_inputs.add(id(raw))
    if not columns or len(model.outputs) != 1:
        return None
    kept = [t for t in model.inputs if id(t) not in cut_inputs]
    if any("string" in str(t.dtype) for t in kept):
        return None
    # a keras.Function, not a keras.Model: a Model from tensors that are not all inputs clones the graph's nodes
    # into the layers, and the model would no longer save
    (probabilities,) = model.outputs
    after = keras.Function(kept + outputs, probabilities, name=f"{model.name}_after_lookups")
    return LookupCut(model=after, numeric=[_name(t) for t in kept], columns=columns)


def _nodes(outputs):
    """(operation, node) of every node the outputs are computed from, each once."""
    seen, stack = set(), list(outputs)
    while stack:
        operation, node = _producer(stack.pop())
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield operation, node
        stack.extend(node.input_tensors)


def _producer(tensor):
    """(the operation, its node) that made a KerasTensor of a functional graph."""
    operation, node_index, _ = tensor._keras_history
    return operation, operation._inbound_nodes[node_index]


def _name(tensor) -> str:
    return tensor.name.split(":")[0]
