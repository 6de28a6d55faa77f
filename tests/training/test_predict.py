"""A saved model on raw loan records: save/load round trip, CSV and JSON lines, unseen categories, ids and
dropped rows, other schemas (absent columns, other spellings)."""
import keras
import numpy as np
import pandas as pd
import pytest

from training.data import parse_frame, parse_records
from training.errors import DataError
from training.predict import (
    PROBABILITY_COLUMNS,
    load_model,
    predict_file,
    predict_frame,
    predict_records,
    required_raw_columns,
)
from training.synthetic import generate_raw, write_raw_csv


@pytest.fixture(scope="module")
def model(trained_run):
    result, _ = trained_run
    return load_model(result.run_dir / "model.keras")


@pytest.fixture(scope="module")
def raw():
    return generate_raw(200, seed=99)


def _parsed(raw_frame):
    frame, dropped = parse_frame(raw_frame, source="test records")
    assert dropped == {}
    return frame


def test_save_load_round_trip_gives_identical_probabilities(model, raw, tmp_path):
    before = predict_frame(model, _parsed(raw))
    model.save(tmp_path / "again.keras")
    after = predict_frame(load_model(tmp_path / "again.keras"), _parsed(raw))
    pd.testing.assert_frame_equal(before, after)
    probabilities = before[list(PROBABILITY_COLUMNS)].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (before["grade"] == [PROBABILITY_COLUMNS[i][-1] for i in probabilities.argmax(axis=1)]).all()
    assert before["id"].tolist() == raw["id"].tolist()


def test_unseen_categories_are_predicted_through_the_oov_bucket(model, raw):
    rows = raw.iloc[:2].copy()
    rows = pd.concat([rows.iloc[[0]]] * 2, ignore_index=True)
    rows["addr_state"] = ["ZZ", "XQ"]
    rows["home_ownership"] = ["SPACESHIP", "CASTLE"]
    rows["purpose"] = ["time_travel", "moon_base"]
    unseen = predict_frame(model, _parsed(rows))
    probabilities = unseen[list(PROBABILITY_COLUMNS)].to_numpy()
    assert np.isfinite(probabilities).all()
    np.testing.assert_array_equal(probabilities[0], probabilities[1])  # both all-OOV: same input
    known = predict_frame(model, _parsed(raw.iloc[[0]]))[list(PROBABILITY_COLUMNS)].to_numpy()
    assert not np.allclose(known[0], probabilities[0])


def test_csv_and_json_lines_give_the_same_predictions(model, trained_run, raw, tmp_path):
    result, _ = trained_run
    model_path = result.run_dir / "model.keras"
    csv_path = write_raw_csv(tmp_path / "records.csv.gz", 150, seed=5)
    jsonl_path = tmp_path / "records.jsonl"
    generate_raw(150, seed=5).to_json(jsonl_path, orient="records", lines=True)
    lines: list[str] = []
    from_csv = predict_file(model_path, csv_path, tmp_path / "csv.csv", log=lines.append)
    from_json = predict_file(model_path, jsonl_path, tmp_path / "json.csv", log=lines.append)
    assert from_csv.rows == from_json.rows == 150
    a, b = pd.read_csv(from_csv.output), pd.read_csv(from_json.output)
    assert list(b.columns) == ["id", "grade", *PROBABILITY_COLUMNS]
    pd.testing.assert_frame_equal(a[["grade", *PROBABILITY_COLUMNS]], b[["grade", *PROBABILITY_COLUMNS]])
    assert any("wrote 150 predictions" in line for line in lines)


def test_json_lines_accept_every_raw_spelling(model):
    base = {"loan_amnt": 10000, "annual_inc": 60000, "dti": 18.5, "fico_range_low": 700, "fico_range_high": 704,
            "emp_length": "10+ years", "home_ownership": "RENT", "addr_state": "CA",
            "application_type": "Individual", "purpose": "credit_card", "verification_status": "Verified",
            "issue_d": "Dec-2015", "earliest_cr_line": "Jan-2001", "revol_util": "36.2%", "term": " 36 months"}
    other = {**base, "issue_d": "2015-12-01", "earliest_cr_line": "2001-01-01", "revol_util": 36.2, "term": 36}
    columns = required_raw_columns(model)
    frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in (base, other)])
    parsed, dropped = parse_frame(frame, source="records")
    assert dropped == {}
    probabilities = predict_frame(model, parsed)[list(PROBABILITY_COLUMNS)].to_numpy()
    np.testing.assert_allclose(probabilities[0], probabilities[1], rtol=1e-6)


def test_records_without_the_model_columns_are_a_data_error_naming_the_flag(trained_run, tmp_path):
    result, _ = trained_run
    path = tmp_path / "few.jsonl"
    path.write_text('{"loan_amnt": 1000, "annual_inc": 5000}\n')
    with pytest.raises(DataError) as info:
        predict_file(result.run_dir / "model.keras", path, tmp_path / "out.csv", log=print)
    message = str(info.value)
    assert "\n" not in message and "lacks columns the model needs: " in message and "dti" in message
    assert message.endswith("(filled by the model's own rules)") and "pass --fill-missing-columns" in message


def test_missing_or_broken_model_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="model file not found"):
        load_model(tmp_path / "none.keras")
    broken = tmp_path / "broken.keras"
    broken.write_text("not a zip")
    with pytest.raises(DataError, match="not a readable .keras model"):
        load_model(broken)


def test_predicting_with_a_freshly_built_model_matches_after_reload(raw, tmp_path):
    from training.features import add_derived_features, fit_fill_values, get_feature_set
    from training.model import build_model

    feature_set = get_feature_set("application")
    frame = add_derived_features(_parsed(raw))
    keras.utils.set_random_seed(3)
    built = build_model(feature_set, frame, fit_fill_values(frame, feature_set), None).inference
    built.optimizer.build(built.trainable_variables)  # saved and reloaded optimizer state match
    before = predict_frame(built, _parsed(raw))
    built.save(tmp_path / "fresh.keras")
    pd.testing.assert_frame_equal(before, predict_frame(load_model(tmp_path / "fresh.keras"), _parsed(raw)))


_LOAD_WITH_LAYERS_ONLY = """
import sys
import keras
import numpy as np
import training.layers
model = keras.saving.load_model(sys.argv[1])
inputs = dict(np.load(sys.argv[2]))
np.save(sys.argv[3], np.asarray(model({k: v for k, v in inputs.items()}, training=False)))
print(sorted(m for m in sys.modules if m.startswith("training")))
"""


def test_the_saved_model_loads_with_only_the_registered_layers(trained_run, raw, tmp_path):
    """model.keras takes parsed record columns (dates as days, missing text as "") and needs no project
    code beyond training.layers (and the formulas it imports) to load and run."""
    import subprocess
    import sys
    from pathlib import Path

    from training.datasets import frame_to_inputs

    result, _ = trained_run
    model = load_model(result.run_dir / "model.keras")
    parsed = _parsed(raw)
    np.savez(tmp_path / "inputs.npz", **frame_to_inputs(parsed, model))
    done = subprocess.run([sys.executable, "-c", _LOAD_WITH_LAYERS_ONLY, str(result.run_dir / "model.keras"),
                           str(tmp_path / "inputs.npz"), str(tmp_path / "out.npy")],
                          cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "['training', 'training.errors', 'training.features', " \
                                                   "'training.layers']"
    expected = predict_frame(model, parsed)[list(PROBABILITY_COLUMNS)].to_numpy()
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=0, atol=1e-6)


def _spelling_records(model, raw):
    """Raw records (text as in a CSV / JSON line) in every spelling, with missing values and unseen categories."""
    columns = required_raw_columns(model)
    text = raw.head(6)[columns + ["id"]].astype(object).where(raw.head(6).notna(), None)
    records = [{c: (str(v) if v is not None else None) for c, v in r.items()} for r in text.to_dict("records")]
    records[0].update(int_rate="0.1155", revol_util="0.362", term="36", issue_d="2015-12-01",
                      earliest_cr_line="2001-01-01", emp_length="< 1 year")
    records[1].update(revol_util=" 49.8% ", term=" 60 months", emp_length="n/a", annual_inc="72000.5",
                      dti=None, bc_util="", home_ownership="  ")
    records[2].update(addr_state="ZZ", home_ownership="SPACESHIP", purpose="time_travel", issue_d="dec-2015",
                      emp_length="10+ years", loan_amnt=12000, fico_range_low=700.0)
    records[3].update({c: None for c in columns if c not in ("loan_amnt", "annual_inc")})
    records[4].update(term=60, emp_length="bogus")   # an int term (pandas' spelling) and a row that is dropped
    return records


def test_record_path_gives_the_batch_paths_values_and_probabilities(model, raw):
    records = _spelling_records(model, raw)
    columns = required_raw_columns(model) + ["id"]
    parsed, dropped = parse_frame(pd.DataFrame(records)[columns], source="records")
    assert dropped == {"unparseable emp_length": 1}
    fast, fast_dropped = parse_records(records, columns, source="records")
    pd.testing.assert_frame_equal(fast, parsed, check_exact=True)
    assert fast_dropped == dropped
    expected = predict_frame(model, parsed)
    pd.testing.assert_frame_equal(predict_records(model, records), expected, check_exact=True)
    kept = [r for r in records if r["emp_length"] != "bogus"]
    for i, record in enumerate(kept):            # one record at a time, the latency path
        one, _ = parse_frame(pd.DataFrame([record])[columns], source="record")
        single = predict_records(model, [record])
        pd.testing.assert_frame_equal(single, predict_frame(model, one), check_exact=True)
        assert single["id"].tolist() == [record["id"]]
        if i > 0:   # record 0's fractions are scaled alone but not among "%" values (decided per call)
            np.testing.assert_allclose(single[list(PROBABILITY_COLUMNS)].to_numpy()[0],
                                       expected[list(PROBABILITY_COLUMNS)].to_numpy()[i], rtol=1e-5)
    probabilities = expected[list(PROBABILITY_COLUMNS)].to_numpy()
    assert np.isfinite(probabilities).all() and len(np.unique(probabilities.round(6), axis=0)) == len(kept)


def test_record_path_without_the_model_columns_is_a_data_error(model):
    with pytest.raises(DataError, match="records lack columns: .*dti"):
        predict_records(model, [{"loan_amnt": 1000, "annual_inc": 5000}])


@pytest.fixture(scope="module")
def model_path(trained_run):
    return trained_run[0].run_dir / "model.keras"


def _with_bad_rows(raw_frame):
    bad = raw_frame.copy()
    bad.loc[3, "emp_length"] = "bogus"
    bad.loc[10, "issue_d"] = "someday"
    return bad


def test_predict_keeps_ids_and_order_and_lists_the_dropped_rows(model, model_path, tmp_path):
    raw_frame = _with_bad_rows(generate_raw(40, seed=7))
    raw_frame.to_csv(tmp_path / "in.csv", index=False)
    lines: list[str] = []
    result = predict_file(model_path, tmp_path / "in.csv", tmp_path / "out.csv", max_bad_rows=0.1, log=lines.append)
    out = pd.read_csv(result.output, dtype={"id": str})
    kept = raw_frame.drop(index=[3, 10])
    assert list(out.columns) == ["id", "grade", *PROBABILITY_COLUMNS] and out["id"].tolist() == kept["id"].tolist()
    expected = predict_frame(model, _parsed(kept.reset_index(drop=True)))
    np.testing.assert_allclose(out[list(PROBABILITY_COLUMNS)], expected[list(PROBABILITY_COLUMNS)], atol=1e-6)
    assert result.dropped_file == tmp_path / "out.dropped.csv" and result.rows == 38
    assert pd.read_csv(result.dropped_file).to_dict("records") == [
        {"id": raw_frame.loc[3, "id"], "reason": "unparseable emp_length"},
        {"id": raw_frame.loc[10, "id"], "reason": "unparseable issue_d"}]
    assert "read 40 rows from 1 file: in.csv" in lines
    assert "dropped 2 rows: 1 unparseable emp_length, 1 unparseable issue_d" in lines
    assert any(line.startswith("listed the 2 dropped rows with their id in ") for line in lines)
    parquet = predict_file(model_path, tmp_path / "in.csv", tmp_path / "out.parquet", max_bad_rows=0.1, log=print)
    pd.testing.assert_frame_equal(pd.read_parquet(parquet.output)[["id", "grade"]], out[["id", "grade"]])
    assert parquet.dropped_file == tmp_path / "out.dropped.csv"
    generate_raw(5, seed=8).to_csv(tmp_path / "clean.csv", index=False)       # a clean rerun: no stale list
    assert predict_file(model_path, tmp_path / "clean.csv", tmp_path / "out.csv", log=lines.append).dropped_file \
        is None and not (tmp_path / "out.dropped.csv").exists() and lines[-2].startswith("removed ")


def test_rows_without_ids_are_numbered_per_file_and_several_files_name_their_source(model_path, tmp_path):
    first = _with_bad_rows(generate_raw(12, seed=3)).drop(columns="id")
    first.to_csv(tmp_path / "a.csv", index=False)
    generate_raw(4, seed=4).drop(columns="id").to_json(tmp_path / "b.jsonl", orient="records", lines=True)
    result = predict_file(model_path, tmp_path / "a.csv", tmp_path / "one.csv", max_bad_rows=0.2, log=print)
    assert pd.read_csv(result.output)["row"].tolist() == [r for r in range(1, 13) if r not in (4, 11)]
    assert pd.read_csv(result.dropped_file)["row"].tolist() == [4, 11]
    both = predict_file(model_path, [tmp_path / "a.csv", tmp_path / "b.jsonl"], tmp_path / "two.csv",
                        max_bad_rows=0.2, log=print)
    out = pd.read_csv(both.output)
    assert list(out.columns[:3]) == ["source", "row", "grade"] and both.rows == 14
    assert list(zip(out["source"].map(lambda s: s[-5:]), out["row"]))[-5:] == [
        ("a.csv", 12), ("jsonl", 1), ("jsonl", 2), ("jsonl", 3), ("jsonl", 4)]
    assert pd.read_csv(both.dropped_file).columns.tolist() == ["source", "row", "reason"]


def test_an_export_without_fico_columns_needs_the_flag_and_is_filled_by_the_models_rules(model, model_path,
                                                                                          tmp_path):
    raw_frame = generate_raw(30, seed=11)
    raw_frame.drop(columns=["fico_range_low", "fico_range_high"]).to_csv(tmp_path / "2016.csv", index=False)
    with pytest.raises(DataError) as info:
        predict_file(model_path, tmp_path / "2016.csv", tmp_path / "out.csv", log=print)
    assert "fico_range_high" in str(info.value) and "fico_range_low" in str(info.value)
    assert "--fill-missing-columns" in str(info.value) and not (tmp_path / "out.csv").exists()
    lines: list[str] = []
    result = predict_file(model_path, tmp_path / "2016.csv", tmp_path / "out.csv", fill_missing_columns=True,
                          log=lines.append)
    assert sorted(result.filled_columns) == ["fico_range_high", "fico_range_low"]
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert len(warnings) == 1 and "fico_range_high, fico_range_low" in warnings[0]
    blanked = raw_frame.assign(fico_range_low=np.nan, fico_range_high=np.nan)  # the model fills them itself
    expected = predict_frame(model, _parsed(blanked))[list(PROBABILITY_COLUMNS)].to_numpy()
    np.testing.assert_allclose(pd.read_csv(result.output)[list(PROBABILITY_COLUMNS)], expected, atol=1e-6)


def test_an_older_spelling_is_read_and_renamed_not_filled(model_path, tmp_path):
    raw_frame = generate_raw(20, seed=12)
    raw_frame.to_csv(tmp_path / "new.csv", index=False)
    raw_frame.rename(columns={"verification_status": "is_inc_v"}).to_csv(tmp_path / "old.csv", index=False)
    lines: list[str] = []
    new = predict_file(model_path, tmp_path / "new.csv", tmp_path / "new_out.csv", log=print)
    old = predict_file(model_path, tmp_path / "old.csv", tmp_path / "old_out.csv", log=lines.append)
    pd.testing.assert_frame_equal(pd.read_csv(old.output), pd.read_csv(new.output))
    assert old.renamed_columns == {"is_inc_v": "verification_status"} and old.filled_columns == []
    assert "read 1 column(s) under another LendingClub spelling: is_inc_v as verification_status" in lines
    record = raw_frame.iloc[0].to_dict()
    older_record = {("is_inc_v" if k == "verification_status" else k): v for k, v in record.items()}
    pd.testing.assert_frame_equal(predict_records(load_model(model_path), [older_record]),
                                  predict_records(load_model(model_path), [record]))


def test_load_lines_say_what_was_renamed_filled_and_dropped_in_one_line_each():
    from training.data import LoadedData, SourceFile
    from training.predict import load_lines

    files = [SourceFile(uri, "0" * 64, 1, 10) for uri in ("s3://b/a.csv", "b.csv")]
    loaded = LoadedData(frame=pd.DataFrame(), files=files, dropped={"unparseable dti": 2, "malformed row": 1},
                        rows_read=20,
                        spellings={"b.csv": {"is_inc_v": "verification_status"}},
                        absent={"s3://b/a.csv": ["fico_range_low", "bc_util"], "b.csv": ["fico_range_low"]},
                        notes=["rows are named by their row number: ..."])
    assert load_lines(loaded, "x.dropped.csv") == [
        "read 20 rows from 2 files: a.csv, b.csv",
        "read 1 column(s) under another LendingClub spelling: is_inc_v as verification_status",
        "warning: 2 column(s) the model needs are absent from the data, treated as missing in every row and filled "
        "by the model's own rules: bc_util, fico_range_low; bc_util absent from a.csv only",
        "dropped 3 rows: 2 unparseable dti, 1 malformed row", "rows are named by their row number: ..."]
