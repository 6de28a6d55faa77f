import pytest

from training.cloud.core import outputs
from training.errors import ConfigError


def test_output_keys_are_distinct_cloudformation_logical_ids():
    keys = [value for name, value in vars(outputs).items() if name.isupper() and isinstance(value, str)]
    assert len(keys) == len(set(keys)) >= 6
    for key in keys:
        assert key.isalnum() and key[0].isupper(), key   # CfnOutput ids: alphanumeric
    # Every key is one stack's output or the other's (BucketName and TopicArn: the shared stack's only).
    assert set(keys) == set(outputs.SHARED_EXPORTS) | set(outputs.RUN_OUTPUTS)
    assert not set(outputs.SHARED_EXPORTS) & set(outputs.RUN_OUTPUTS)


def test_stack_names():
    assert outputs.run_stack_name("Spotgrade", "lc-2026-11") == "Spotgrade-lc-2026-11"
    assert outputs.run_id_of_stack("Spotgrade", "Spotgrade-lc-2026-11") == "lc-2026-11"
    assert outputs.run_id_of_stack("Spotgrade", "Spotgrade") is None
    assert outputs.run_id_of_stack("Spotgrade", "Spotgrade-") is None
    assert outputs.export_name("Spotgrade", outputs.BUCKET_NAME) == "Spotgrade:BucketName"
    with pytest.raises(ValueError):
        outputs.export_name("Spotgrade", outputs.RUN_ID)  # a run stack exports nothing
    assert outputs.log_group_name("Spotgrade", "a") == "/spotgrade/Spotgrade/a"
    assert outputs.alarm_name_prefix("Spotgrade") == "Spotgrade-"


@pytest.mark.parametrize("run_id", ["a_b", "a.b", "x" * 120, "a\n"])
def test_a_run_id_that_names_no_stack_is_one_line(run_id):
    with pytest.raises(ConfigError, match="context key 'runId'") as info:
        outputs.run_stack_name("Spotgrade", run_id)
    assert "\n" not in str(info.value).replace(repr(run_id), "")
