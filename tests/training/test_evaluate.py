"""The `evaluate` command: a saved model evaluated on a labelled file, and on files of other schemas."""
import json

import pandas as pd
import pytest

from training.errors import DataError
from training.evaluate import evaluate, training_run_id
from training.synthetic import generate_raw

METRIC_KEYS = {"accuracy", "weighted_f1", "macro_f1", "per_grade", "confusion_matrix", "expected_calibration_error"}

#: The 74 columns of the 2007-2015 export many tutorials use (no FICO, no bureau fields of 2016, open_il_6m).
EXPORT_2015_COLUMNS = (
    "id,member_id,loan_amnt,funded_amnt,funded_amnt_inv,term,int_rate,installment,grade,sub_grade,emp_title,"
    "emp_length,home_ownership,annual_inc,verification_status,issue_d,loan_status,pymnt_plan,url,desc,purpose,"
    "title,zip_code,addr_state,dti,delinq_2yrs,earliest_cr_line,inq_last_6mths,mths_since_last_delinq,"
    "mths_since_last_record,open_acc,pub_rec,revol_bal,revol_util,total_acc,initial_list_status,out_prncp,"
    "out_prncp_inv,total_pymnt,total_pymnt_inv,total_rec_prncp,total_rec_int,total_rec_late_fee,recoveries,"
    "collection_recovery_fee,last_pymnt_d,last_pymnt_amnt,next_pymnt_d,last_credit_pull_d,"
    "collections_12_mths_ex_med,mths_since_last_major_derog,policy_code,application_type,annual_inc_joint,"
    "dti_joint,verification_status_joint,acc_now_delinq,tot_coll_amt,tot_cur_bal,open_acc_6m,open_il_6m,"
    "open_il_12m,open_il_24m,mths_since_rcnt_il,total_bal_il,il_util,open_rv_12m,open_rv_24m,max_bal_bc,all_util,"
    "total_rev_hi_lim,inq_fi,total_cu_tl,inq_last_12m").split(",")


def test_evaluate_a_saved_model_on_a_labelled_file(trained_run, tmp_path):
    from training.predict import predict_file

    result, _ = trained_run
    model_path, data = result.run_dir / "model.keras", result.run_dir / "data" / "synthetic.csv"
    lines: list[str] = []
    metrics = evaluate(model_path, data, tmp_path / "eval", log=lines.append)
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert METRIC_KEYS <= set(written["test"]) and written == json.loads(json.dumps(metrics))
    assert written["rows"] == {"train": 0, "validation": 0, "test": result.run_info["data"]["rows_read"]}
    assert written["run_id"] == "shared-run" and written["filled_columns"] == [] and written["renamed_columns"] == {}
    assert sum(y["rows"] for y in written["test"]["per_year"].values()) == written["rows"]["test"]
    for name in ("confusion_matrix.png", "reliability.png"):
        assert (tmp_path / "eval" / name).stat().st_size > 5_000
    assert "shared-run" in (tmp_path / "eval" / "report.md").read_text()
    # the same accuracy as the grades predict writes for the same rows
    predicted = pd.read_csv(predict_file(model_path, data, tmp_path / "p.csv", log=lines.append).output)
    true = pd.read_csv(data, skiprows=1, usecols=["grade"], nrows=len(predicted))["grade"]
    assert metrics["test"]["accuracy"] == pytest.approx((predicted["grade"] == true).mean())
    assert any(line.startswith("evaluated ") for line in lines)


def test_an_older_74_column_export_is_evaluated_with_its_absent_columns_filled(trained_run, tmp_path):
    model_path = trained_run[0].run_dir / "model.keras"
    raw = generate_raw(300, seed=21, all_columns=True).rename(columns={"open_act_il": "open_il_6m"})
    raw[[c for c in EXPORT_2015_COLUMNS if c in raw.columns]].to_csv(tmp_path / "loan.csv", index=False)
    with pytest.raises(DataError, match=r"lacks columns the model needs: .*fico_range_high.*--fill-missing-columns"):
        evaluate(model_path, tmp_path / "loan.csv", tmp_path / "refused", log=print)
    assert not (tmp_path / "refused").exists()
    lines: list[str] = []
    metrics = evaluate(model_path, tmp_path / "loan.csv", tmp_path / "eval", fill_missing_columns=True,
                       log=lines.append)
    filled = json.loads((tmp_path / "eval" / "metrics.json").read_text())["filled_columns"]
    assert filled == metrics["filled_columns"] and {"fico_range_high", "fico_range_low", "bc_util"} <= set(filled)
    assert not set(filled) & set(EXPORT_2015_COLUMNS)
    assert [line for line in lines if line.startswith("warning: ")] == [
        f"warning: {len(filled)} column(s) the model needs are absent from the data, treated as missing in every row "
        f"and filled by the model's own rules: {', '.join(filled)}"]
    assert metrics["rows"]["test"] == 300 and 0 < metrics["test"]["accuracy"] <= 1


def test_the_training_run_id_comes_from_run_json_beside_the_model(tmp_path):
    assert training_run_id(tmp_path / "model.keras") is None
    (tmp_path / "run.json").write_text('{"run_id": "r1"}')
    assert training_run_id(tmp_path / "model.keras") == "r1"
    (tmp_path / "run.json").write_text("[not json")
    assert training_run_id(tmp_path / "model.keras") is None
