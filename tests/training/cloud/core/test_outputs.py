from training.cloud.core import outputs


def test_output_keys_are_distinct_cloudformation_logical_ids():
    keys = [value for name, value in vars(outputs).items() if name.isupper()]
    assert len(keys) == len(set(keys)) >= 6
    for key in keys:
        assert key.isalnum() and key[0].isupper(), key   # CfnOutput ids: alphanumeric
