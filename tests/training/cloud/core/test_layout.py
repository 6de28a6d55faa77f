"""The run's S3 layout (keys only), against moto. The status record is lifecycle.py's: test_lifecycle.py."""
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.training.cloud.core.helpers import stage_kit
from training.cloud.core import layout as L
from training.errors import ConfigError

BUCKET = "spotgrade-test"


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_keys():
    lay = L.RunLayout(BUCKET, "run-1")
    assert lay.prefix == "runs/run-1/"
    assert lay.status_key == "runs/run-1/status.json"
    assert lay.scratch_prefix == "scratch/run-1/"
    assert lay.checkpoints_prefix == "scratch/run-1/checkpoints/"
    assert lay.artifacts_prefix == "runs/run-1/artifacts/"
    assert lay.logs_prefix == "runs/run-1/logs/"
    assert lay.artifact_key("model.keras") == "runs/run-1/artifacts/model.keras"
    assert lay.checkpoint_key("chkpt/a.weights.h5") == "scratch/run-1/checkpoints/chkpt/a.weights.h5"
    assert lay.log_key(1) == "runs/run-1/logs/attempt-0001.log"
    assert lay.log_key(12) == "runs/run-1/logs/attempt-0012.log"
    assert lay.log_stream(3) == "run-1/attempt-0003"
    assert lay.env_prefix == "scratch/run-1/env/"
    assert lay.boot_log_key("i-0abc") == "runs/run-1/logs/boot-i-0abc.log"
    assert lay.boot_log_key("") == "runs/run-1/logs/boot-unknown.log"
    assert lay.boot_log_stream("i-0abc") == "run-1/boot-i-0abc"
    assert L.RunLayout.from_key(BUCKET, lay.boot_log_key("i-0abc")) == lay
    assert lay.uri(lay.status_key) == "s3://spotgrade-test/runs/run-1/status.json"
    assert L.RunLayout.from_key(BUCKET, "runs/run-1/logs/attempt-0001.log") == lay


@pytest.mark.parametrize("run_id", ["", "-x", "a/b", "a b", "x" * 64, "ä", "../up"])
def test_bad_run_id(run_id):
    with pytest.raises(ConfigError, match="run id"):
        L.RunLayout(BUCKET, run_id)


@pytest.mark.parametrize("name", ["", "../x", "a/../b", "a//b"])
def test_bad_relative_names(name):
    with pytest.raises(ConfigError):
        L.RunLayout(BUCKET, "r").artifact_key(name)


def test_bad_attempt_and_bucket():
    with pytest.raises(ConfigError, match="attempt"):
        L.RunLayout(BUCKET, "r").log_key(0)
    with pytest.raises(ConfigError, match="bucket"):
        L.RunLayout("Bad_Bucket", "r")
    with pytest.raises(ConfigError):
        L.RunLayout.from_key(BUCKET, "data/x.csv")


def test_bad_boot_log_names():
    with pytest.raises(ConfigError):
        L.RunLayout(BUCKET, "r").boot_log_key("../etc")


def test_layout_no_longer_holds_the_status_record():
    """lifecycle.py is the one owner of status.json: nothing here could write it behind its back."""
    for name in ("STATES", "TERMINAL_STATES", "new_status", "read_status", "write_status", "utc_now", "parse_time"):
        assert not hasattr(L, name), name


def test_run_keys_without_a_bucket():
    keys = L.RunKeys("run-1")
    lay = L.RunLayout(BUCKET, "run-1")
    for name in ("prefix", "status_key", "scratch_prefix", "checkpoints_prefix", "artifacts_prefix", "logs_prefix",
                 "env_prefix"):
        assert getattr(keys, name) == getattr(lay, name), name
    assert keys.boot_log_stream("{instance_id}") == "run-1/boot-{instance_id}"
    assert (keys.log_key(2), keys.log_stream(2)) == (lay.log_key(2), lay.log_stream(2))
    with pytest.raises(ConfigError, match="run id"):
        L.RunKeys("../up")


def test_data_keys_and_run_ids_from_prefixes():
    assert L.data_key("LoanStats3a.csv.gz") == "data/LoanStats3a.csv.gz"
    with pytest.raises(ConfigError):
        L.data_key("../x.csv")
    assert L.run_id_from_prefix("s3://spotgrade-test/runs/exp-7/") == "exp-7"
    assert L.run_id_from_prefix("runs/exp-7") == "exp-7"
    assert L.run_id_from_prefix("s3://b/data/x/") is None and L.run_id_from_prefix(None) is None


def test_only_this_module_spells_the_run_keys():
    """runs/, scratch/, status.json and data/ as string literals: here and nowhere else in training/ and stacks/."""
    root = Path(__file__).resolve().parents[4]
    literal = re.compile(r"""["'](?:runs/|scratch/|status\.json|data/)""")
    spelled = sorted(str(p.relative_to(root)) for folder in ("training", "stacks")
                     for p in (root / folder).rglob("*.py") if literal.search(p.read_text()))
    assert spelled == ["training/cloud/core/layout.py"]


def test_list_run_ids(s3):
    for run_id in ("b-run", "a-run"):
        s3.put_object(Bucket=BUCKET, Key=L.RunLayout(BUCKET, run_id).status_key, Body=b"{}")
    s3.put_object(Bucket=BUCKET, Key="runs/c-run/checkpoints/x", Body=b"1")
    s3.put_object(Bucket=BUCKET, Key="data/other.csv", Body=b"1")
    assert L.list_run_ids(s3, BUCKET) == ["a-run", "b-run", "c-run"]


def test_layout_imports_only_the_standard_library(tmp_path):
    """Deployed as the watchdog Lambda's code: imports from the code asset alone, without the project's modules."""
    stage_kit(tmp_path)
    code = (
        "import sys\n"
        "from training.cloud.core import layout\n"
        "from training.errors import ConfigError\n"
        "heavy = {'pandas', 'tensorflow', 'keras', 'numpy', 'boto3'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "try:\n    layout.RunLayout('b-1', '../x')\nexcept ConfigError as e:\n    print('ok', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok run id")


def test_package_import_is_light():
    code = ("import sys, training.cloud, training.cloud.core.layout\n"
            "print(sorted({'pandas','tensorflow','keras'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[4])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
