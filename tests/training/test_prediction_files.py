"""training.prediction_files: where predict writes its dropped rows, and when it writes Parquet."""
from pathlib import Path

import pytest

from training.prediction_files import dropped_path, is_parquet


@pytest.mark.parametrize(("output", "dropped"), [
    ("out/preds.csv", "out/preds.dropped.csv"), ("preds.csv.gz", "preds.dropped.csv"),
    ("preds.parquet", "preds.dropped.csv"), ("P.PARQUET", "P.dropped.csv"), ("preds", "preds.dropped.csv"),
    ("preds.tsv", "preds.dropped.csv"), (".csv", ".csv.dropped.csv"),
])
def test_dropped_path_is_the_output_without_its_suffix(output: str, dropped: str) -> None:
    assert dropped_path(output) == Path(dropped)


def test_parquet_by_name() -> None:
    assert is_parquet("a/b.parquet") and is_parquet(Path("B.Parquet"))
    assert not is_parquet("b.csv") and not is_parquet("parquet.csv")
