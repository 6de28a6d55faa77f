import pytest

from training.errors import CloudError, ConfigError, DataError, SpotgradeError


@pytest.mark.parametrize("error", [DataError, ConfigError, CloudError])
def test_user_errors_are_spotgrade_errors(error):
    """The CLI turns any SpotgradeError into one line and exit 2; each kind must be one."""
    assert issubclass(error, SpotgradeError)
    with pytest.raises(SpotgradeError, match="names the setting"):
        raise error("names the setting")


def test_spotgrade_error_is_not_a_value_error():
    """A bug (ValueError, KeyError) must not be mistaken for a user error."""
    assert not issubclass(SpotgradeError, (ValueError, KeyError, OSError))
