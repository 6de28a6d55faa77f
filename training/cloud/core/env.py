"""Every SPOTGRADE_* environment key: the one place their names are spelled.

The stack renders the run's keys into the user data header and the watchdog Lambda's environment; the user
data writes the runner's env file from them; the runner (training/cloud/run_settings.py), the boot kit and the
watchdog read them. stacks/user_data.sh, which cannot import Python, is checked against this module by a test.
"""
from __future__ import annotations

PREFIX = "SPOTGRADE_"

# ---- the run: user data header -> runner env file (also the watchdog's environment where marked)
RUN_ID = "SPOTGRADE_RUN_ID"                        # also the watchdog's
BUCKET = "SPOTGRADE_BUCKET"                        # also the watchdog's
ASG_NAME = "SPOTGRADE_ASG_NAME"                    # also the watchdog's
TOPIC_ARN = "SPOTGRADE_TOPIC_ARN"                  # also the watchdog's
MAX_RUNTIME_HOURS = "SPOTGRADE_MAX_RUNTIME_HOURS"  # also the watchdog's
MAX_ATTEMPTS = "SPOTGRADE_MAX_ATTEMPTS"
DATA_URI = "SPOTGRADE_DATA_URI"
TRAIN_ARGS = "SPOTGRADE_TRAIN_ARGS"
CAPACITY = "SPOTGRADE_CAPACITY"
LOG_GROUP = "SPOTGRADE_LOG_GROUP"
REGION = "SPOTGRADE_REGION"
GIT_REF = "SPOTGRADE_GIT_REF"                      # also the user data's header
GIT_COMMIT = "SPOTGRADE_GIT_COMMIT"                # also the user data's header: the commit gitRef named at synth
ALLOW_UNPUSHED_CODE = "SPOTGRADE_ALLOW_UNPUSHED_CODE"  # "true" where the pre-flight's override was set

# ---- the user data's own (header only)
REPO_URL = "SPOTGRADE_REPO_URL"
REPO_TOKEN_SECRET = "SPOTGRADE_REPO_TOKEN_SECRET"  # the secret's name or ARN (never the token), or empty
RUN_ENV = "SPOTGRADE_RUN_ENV"                      # the env file's contents, rendered by the stack
BOOT_KIT_URI = "SPOTGRADE_BOOT_KIT_URI"
ENV_URI = "SPOTGRADE_ENV_URI"
BOOT_LOG_STREAM = "SPOTGRADE_BOOT_LOG_STREAM"
ROOT = "SPOTGRADE_ROOT"                            # test variable: the instance's file system root (rehearsal)
REQUIREMENTS = "SPOTGRADE_REQUIREMENTS"            # test variable: the requirements file to install (rehearsal)

# ---- runner tuning (optional; defaults in run_settings.py)
METADATA_URL = "SPOTGRADE_METADATA_URL"            # also the boot kit's
WORK_DIR = "SPOTGRADE_WORK_DIR"                    # also the user data's
HEARTBEAT_SECONDS = "SPOTGRADE_HEARTBEAT_SECONDS"
NOTICE_POLL_SECONDS = "SPOTGRADE_NOTICE_POLL_SECONDS"
LOG_FLUSH_SECONDS = "SPOTGRADE_LOG_FLUSH_SECONDS"
TEST_STALL_AT_EPOCH = "SPOTGRADE_TEST_STALL_AT_EPOCH"  # test hook: training blocks at this epoch (hung run)

# ---- the watchdog Lambda's own
HEARTBEAT_MINUTES = "SPOTGRADE_HEARTBEAT_MINUTES"
BOOT_GRACE_MINUTES = "SPOTGRADE_BOOT_GRACE_MINUTES"
TIMEOUT_GRACE_MINUTES = "SPOTGRADE_TIMEOUT_GRACE_MINUTES"


def all_keys() -> dict[str, str]:
    """{constant name: key} of every key above."""
    return {name: value for name, value in globals().items() if isinstance(value, str) and value.startswith(PREFIX)
            and name != "PREFIX"}
