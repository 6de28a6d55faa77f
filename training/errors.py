"""User-facing errors: one line that names the file, column or setting and how to fix it.

The CLI prints `error: <message>` and exits with status 2 for any SpotgradeError; anything else is a bug.
"""


class SpotgradeError(Exception):
    """A problem the user can fix (bad input, bad setting, missing resource)."""


class DataError(SpotgradeError):
    """Input data that cannot be read or used: names the file and/or column."""


class ConfigError(SpotgradeError):
    """A bad option or setting: names the setting, the value and what is allowed."""


class CloudError(SpotgradeError):
    """AWS cannot be reached or the run cannot be found: no credentials, no stack, run not started yet."""
