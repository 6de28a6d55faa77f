"""The deploy settings: every CDK context key's name, default and validation, and the one context loader.

Defaults live in `DEFAULTS` (cdk.json's "context" holds the same values; a test checks it); override any key
with `-c key=value`. `read_settings` refuses a context key that is not a setting (naming the closest one) and
`RunConfig.from_context` checks every value: a bad one raises `ConfigError` with one line naming the key, the
value and what is allowed, whatever its type. Values that reach the instance's shell are matched against
strict patterns (the whole value, control characters refused) and are shell-quoted later by
stacks/user_data.py. The stack (at synth), `make deploy`'s pre-flight and `estimate` all read the settings
through this module (training/cloud/preflight.py's `read_deploy_settings` adds what lies outside core: train's
own flag parser and the gitRef lookup, both passed in, so core stays standard library only).
"""
from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional, Tuple

from training.cloud.core import outputs
from training.cloud.core.layout import BUCKET_PATTERN, RUN_ID_PATTERN, RUN_ID_RULE, RunKeys
from training.cloud.core.lifecycle import DEFAULT_MAX_ATTEMPTS
from training.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[3]

# Deep Learning Base OSS Nvidia Driver GPU AMI (Amazon Linux 2023, x86_64): NVIDIA driver + CUDA,
# python3.12, AWS CLI v2, SSM agent; supports G4dn, G5, G6 and larger GPU families. Resolved by
# CloudFormation at deploy time (no lookup at synth). Its root snapshot is 75 GiB on /dev/xvda.
DEFAULT_AMI_PARAMETER = (
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id"
)

DEFAULTS: dict[str, Any] = {
    "stackName": "Spotgrade",
    "runId": "default",
    "instanceTypes": ["g4dn.xlarge", "g5.xlarge", "g6.xlarge"],
    "capacity": "spot",
    "maxSpotPrice": None,
    "repoUrl": None,
    "gitRef": "main",
    "dataUri": "",
    "trainArgs": "",
    "maxRuntimeHours": 8,
    "rootVolumeGiB": 100,
    "amiParameter": DEFAULT_AMI_PARAMETER,
    "artifactBucket": None,
    "retainArtifacts": True,
    "checkpointExpiryDays": 7,
    "logRetentionDays": 30,
    "notifyEmail": None,
    "heartbeatMinutes": 15,
    "maxAttempts": DEFAULT_MAX_ATTEMPTS,
    "allowUnpushedCode": False,
    "repoTokenSecret": None,
}

CAPACITY_MODES = ("spot", "on-demand")
# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)
# Flags the runner sets itself; trainArgs may not override them.
RESERVED_TRAIN_FLAGS = ("--data", "--output", "--run-id")
MAX_INSTANCE_TYPES = 20  # a mixed-instances policy takes at most 40 overrides; 20 is plenty
# A full commit id: a gitRef of this form is taken as the commit itself (no lookup).
FULL_COMMIT = re.compile(r"[0-9a-fA-F]{40}")
# resolve_commit(repo_url, git_ref) -> (commit, None) or (None, one-line reason): training/cloud/git_remote.py's.
ResolveCommit = Callable[[str, str], Tuple[Optional[str], Optional[str]]]
# check_train_args(tokens): raises ConfigError with one line for flags `python -m training train` refuses.
CheckTrainArgs = Callable[[Sequence[str]], object]

# Every pattern is matched against the whole value (fullmatch).
_INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9]+")
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,99}")
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
_REPO_URL = re.compile(rf"https://{_HOST}(?::[0-9]{{1,5}})?(?:/[A-Za-z0-9._~-]+)+/?")
_GIT_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
_DATA_URI = re.compile(rf"s3://(?P<bucket>{BUCKET_PATTERN.pattern})(?:/(?P<key>[A-Za-z0-9!_.*()/=+-]*))?")
_AMI_PARAMETER = re.compile(r"/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")
_FLAG = re.compile(r"--[a-z][a-z0-9-]*(?:=[A-Za-z0-9_.,:/+=-]+)?")
_FLAG_VALUE = re.compile(r"[A-Za-z0-9_.,:/+=-]+")
_SECRET_NAME = r"[A-Za-z0-9/_+=.@-]{1,512}"
_SECRET = re.compile(rf"{_SECRET_NAME}|arn:aws[a-z-]*:secretsmanager:[a-z]{{2}}(?:-[a-z]+)+-[0-9]{{1,2}}:[0-9]{{12}}"
                     rf":secret:{_SECRET_NAME}")
# A GitHub or GitLab token (given where its secret's name belongs).
_TOKEN = re.compile(r"gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82}|glpat-[A-Za-z0-9_-]{20}")
# Line breaks and other control characters (C0, DEL, C1, the Unicode line and paragraph separators).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")


# ---------------------------------------------------------------- the validated settings

@dataclass(frozen=True)
class RunConfig:
    """Everything one deployment of the stack needs; build it with `from_context`."""

    stack_name: str
    run_id: str
    instance_types: tuple[str, ...]
    capacity: str                    # "spot" | "on-demand"
    max_spot_price: float | None     # $/hour cap; None = the on-demand price (AWS default)
    repo_url: str | None             # None: synth for review only; deploy is refused
    git_ref: str
    data_uri: str                    # "" = the built-in synthetic sample
    train_args: str                  # normalised (shlex.join of the validated tokens)
    max_runtime_hours: float
    root_volume_gib: int
    ami_parameter: str
    artifact_bucket: str | None      # existing bucket to use instead of creating one
    retain_artifacts: bool
    checkpoint_expiry_days: int
    log_retention_days: int
    notify_email: str | None         # None: the topic exists, nobody is subscribed by email
    heartbeat_minutes: int           # the watchdog stops a run whose training has not advanced for this long
    max_attempts: int                # failed (crashed) attempts in a row before the run is FAILED
    allow_unpushed_code: bool        # make deploy's pre-flight let a dirty tree or an unpushed commit through
    repo_token_secret: str | None    # Secrets Manager secret (name or ARN) with a token for a private repoUrl
    git_commit: str | None = None       # the commit gitRef resolved to at synth (40 hex digits), or None
    git_commit_note: str | None = None  # why git_commit is None (one line), or None

    @classmethod
    def from_context(cls, get: Callable[[str], Any], *,
                     default_repo_url: Callable[[], str | None] | None = None,
                     resolve_commit: ResolveCommit | None = None,
                     check_train_args: CheckTrainArgs | None = None) -> RunConfig:
        """Read and validate every key; `get(key)` returns the context value or None (the default).

        Without a repoUrl, `default_repo_url()` (where given) supplies one, e.g. the checkout's origin remote.
        `check_train_args(tokens)` (where given) checks trainArgs with train's own flag parser. Once every value
        is valid, `resolve_commit(repo_url, git_ref)` (where given) turns gitRef into git_commit; a gitRef of 40
        hex digits is the commit itself, and without a lookup (or where it fails) git_commit_note says why.
        """

        def value(key: str) -> Any:
            raw = get(key)
            if raw is None:
                return DEFAULTS[key]
            if isinstance(raw, str) and _CONTROL.search(raw):
                raise _bad(key, raw, "a value without line breaks or other control characters")
            return raw

        repo_url = _optional(value("repoUrl"))
        if repo_url is None and default_repo_url is not None:
            repo_url = default_repo_url()
        hours = _runtime_hours(value("maxRuntimeHours"))
        capacity = _choice("capacity", value("capacity"), CAPACITY_MODES)
        config = cls(
            stack_name=_match("stackName", value("stackName"), _STACK_NAME,
                              "a letter, then letters, digits or '-' (at most 100)"),
            run_id=_match("runId", value("runId"), RUN_ID_PATTERN, RUN_ID_RULE),
            instance_types=_instance_types(value("instanceTypes")),
            capacity=capacity,
            max_spot_price=_max_spot_price(value("maxSpotPrice"), capacity),
            repo_url=None if repo_url is None else _repo_url(repo_url),
            git_ref=_git_ref(value("gitRef")),
            data_uri=_data_uri(value("dataUri")),
            train_args=_train_args(value("trainArgs"), check_train_args),
            max_runtime_hours=hours,
            root_volume_gib=_integer("rootVolumeGiB", value("rootVolumeGiB"), 75, 4096,
                                     "whole GiB from 75 (the Deep Learning AMI's snapshot) to 4096"),
            ami_parameter=_match("amiParameter", value("amiParameter"), _AMI_PARAMETER,
                                 "an SSM parameter name such as " + DEFAULT_AMI_PARAMETER),
            artifact_bucket=_artifact_bucket(value("artifactBucket")),
            retain_artifacts=_boolean("retainArtifacts", value("retainArtifacts")),
            checkpoint_expiry_days=_checkpoint_expiry(value("checkpointExpiryDays"), hours),
            log_retention_days=_choice("logRetentionDays", _maybe_int(value("logRetentionDays")),
                                       LOG_RETENTION_DAYS),
            notify_email=_notify_email(value("notifyEmail")),
            heartbeat_minutes=_integer("heartbeatMinutes", value("heartbeatMinutes"), 5, 120,
                                       "whole minutes 5-120"),
            max_attempts=_integer("maxAttempts", value("maxAttempts"), 1, 10, "whole attempts 1-10"),
            allow_unpushed_code=_boolean("allowUnpushedCode", value("allowUnpushedCode")),
            repo_token_secret=_repo_token_secret(value("repoTokenSecret")),
        )
        outputs.run_stack_name(config.stack_name, config.run_id)  # ConfigError: no valid stack name for this run
        commit, note = _git_commit(config.repo_url, config.git_ref, resolve_commit)
        return replace(config, git_commit=commit, git_commit_note=note)

    @property
    def asg_name(self) -> str:
        """The Auto Scaling group's explicit name (its run stack's name), known to the user data and the IAM
        policy."""
        return outputs.run_stack_name(self.stack_name, self.run_id)

    @property
    def keys(self) -> RunKeys:
        """The run's keys in the artifacts bucket (layout.py)."""
        return RunKeys(self.run_id)

    @property
    def run_prefix(self) -> str:
        """The run's key prefix in the artifacts bucket."""
        return self.keys.prefix

    @property
    def log_group_name(self) -> str:
        return outputs.log_group_name(self.stack_name, self.run_id)

    @property
    def data_location(self) -> tuple[str, str] | None:
        """(bucket, key prefix up to the first glob character) of dataUri; None for the synthetic sample."""
        if not self.data_uri:
            return None
        match = _DATA_URI.fullmatch(self.data_uri)
        assert match is not None  # validated in from_context
        key = match.group("key") or ""
        return match.group("bucket"), key.split("*", 1)[0]


# ---------------------------------------------------------------- validators (one line each)

def shown(value: Any, limit: int = 200) -> str:
    """A value as one line (repr), cut to about `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _bad(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"context key '{key}': {shown(value)} is not allowed; expected {allowed} "
                       f"(set it with -c {key}=...)")


def _optional(raw: Any) -> Any:
    """A setting that may be empty: None for null, "" or blanks; a string stripped; any other value as it is (for
    the setting's own check to refuse)."""
    if isinstance(raw, str):
        return raw.strip() or None
    return raw


def _match(key: str, raw: Any, pattern: re.Pattern[str], allowed: str) -> str:
    if not isinstance(raw, str) or not pattern.fullmatch(raw):
        raise _bad(key, raw, allowed)
    return raw


def _choice(key: str, raw: Any, allowed: Sequence[Any]) -> Any:
    if isinstance(raw, bool) or raw not in allowed:  # True == 1: a boolean is no number of days
        raise _bad(key, raw, "one of " + ", ".join(str(a) for a in allowed))
    return raw


def _maybe_int(raw: Any) -> Any:
    if isinstance(raw, str) and re.fullmatch(r"[0-9]{1,6}", raw.strip()):
        return int(raw)
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    return raw


def _number(key: str, raw: Any, low: float, high: float, allowed: str) -> float:
    if isinstance(raw, bool):
        raise _bad(key, raw, allowed)
    try:
        number = float(raw)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int too large for a float
        raise _bad(key, raw, allowed) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise _bad(key, raw, allowed)
    return number


def _integer(key: str, raw: Any, low: int, high: int, allowed: str) -> int:
    number = _number(key, raw, low, high, allowed)
    if number != int(number):
        raise _bad(key, raw, allowed)
    return int(number)


def _boolean(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise _bad(key, raw, "true or false")


def _runtime_hours(raw: Any) -> float:
    allowed = "a number of hours > 0 and <= 72"
    hours = _number("maxRuntimeHours", raw, 0.0, 72.0, allowed)
    if hours == 0:
        raise _bad("maxRuntimeHours", raw, allowed)
    return hours


def _checkpoint_expiry(raw: Any, hours: float) -> int:
    expiry = _integer("checkpointExpiryDays", raw, 1, 3650, "whole days 1-3650")
    if expiry <= math.ceil(hours / 24):
        raise _bad("checkpointExpiryDays", expiry,
                   f"more days than the run can last (maxRuntimeHours={hours:g}), so live checkpoints never expire")
    return expiry


def _instance_types(raw: Any) -> tuple[str, ...]:
    allowed = f"1-{MAX_INSTANCE_TYPES} EC2 instance types such as g5.xlarge (a JSON list or comma-separated)"
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                raw = json.loads(text)
            except (ValueError, RecursionError):  # not JSON, or nested too deeply
                raise _bad("instanceTypes", raw, allowed) from None
        else:
            raw = [part.strip() for part in text.split(",")]
    if not isinstance(raw, (list, tuple)) or not 1 <= len(raw) <= MAX_INSTANCE_TYPES:
        raise _bad("instanceTypes", raw, allowed)
    for item in raw:
        if not isinstance(item, str) or not _INSTANCE_TYPE.fullmatch(item):
            raise _bad("instanceTypes", item, allowed)
    if len(set(raw)) != len(raw):
        raise _bad("instanceTypes", raw, allowed + ", each once")
    return tuple(raw)


def _max_spot_price(raw: Any, capacity: str) -> float | None:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "null")):
        return None
    price = _number("maxSpotPrice", raw, 0.0, 100.0, "a price in $/hour > 0 and <= 100, or empty for no cap")
    if price == 0:
        raise _bad("maxSpotPrice", raw, "a price in $/hour > 0 and <= 100, or empty for no cap")
    if capacity != "spot":
        raise _bad("maxSpotPrice", raw, "no value when capacity=on-demand")
    return price


def _repo_url(raw: Any) -> str:
    if isinstance(raw, str) and "@" in raw:  # the credentials are not repeated in the message
        raise _bad("repoUrl", re.sub(r"(?<=//)[^/@]*@", "***@", raw),
                   "an https URL without credentials (user data is not secret; a private repository's token goes "
                   "in a Secrets Manager secret named by repoTokenSecret)")
    return _match("repoUrl", raw, _REPO_URL, "an https git URL such as https://host/owner/repo.git "
                                             "(letters, digits and . _ ~ - in each path part)")


def _git_ref(raw: Any) -> str:
    allowed = "a branch, tag or commit: letters, digits, '.', '_', '/', '-' (no '..', no leading '-')"
    ref = _match("gitRef", raw, _GIT_REF, allowed)
    if ".." in ref or ref.endswith((".lock", "/", ".")) or "//" in ref:
        raise _bad("gitRef", raw, allowed)
    return ref


def _data_uri(raw: Any) -> str:
    if raw is None or raw == "":
        return ""
    allowed = "s3://bucket/key-or-prefix (letters, digits and ! _ . * ( ) / = + - in the key), or empty"
    uri = _match("dataUri", raw, _DATA_URI, allowed)
    if ".." in uri[5:].split("/", 1)[0]:
        raise _bad("dataUri", raw, allowed)
    return uri


def _artifact_bucket(raw: Any) -> str | None:
    name = _optional(raw)
    if name is None:
        return None
    if not isinstance(name, str) or ".." in name or not BUCKET_PATTERN.fullmatch(name):
        raise _bad("artifactBucket", raw, "an S3 bucket name (3-63 of a-z, 0-9, '.', '-'), or empty")
    return name


def validate_email(raw: Any) -> str:
    """One email address (the notifyEmail context key), or ConfigError."""
    if not isinstance(raw, str) or len(raw) > 254 or not _EMAIL.fullmatch(raw):
        raise _bad("notifyEmail", raw, "one email address such as you@example.com, or empty for no email")
    return raw


def _notify_email(raw: Any) -> str | None:
    email = _optional(raw)
    return None if email is None else validate_email(email)


def _train_args(raw: Any, check: CheckTrainArgs | None = None) -> str:
    """trainArgs normalised (shlex.join of its tokens): safe characters only, none of the runner's own flags,
    and (where `check` is given) flags that train's own parser accepts."""
    allowed = ("`python -m training train` flags such as '--epochs 30 --features reference' "
               "(values of letters, digits and _ . , : / + = -)")
    if raw is None or raw == "":
        return ""
    if isinstance(raw, (list, tuple)):
        tokens = [str(t) for t in raw]
    elif isinstance(raw, str):
        try:
            tokens = shlex.split(raw)
        except ValueError:
            raise _bad("trainArgs", raw, allowed) from None
    else:
        raise _bad("trainArgs", raw, allowed)
    previous_was_flag = False
    for token in tokens:
        if _FLAG.fullmatch(token):
            name = token.split("=", 1)[0]
            if any(reserved.startswith(name) for reserved in RESERVED_TRAIN_FLAGS):  # argparse abbreviations too
                raise _bad("trainArgs", raw, f"no {', '.join(RESERVED_TRAIN_FLAGS)} (the runner sets them)")
            previous_was_flag = "=" not in token
        elif previous_was_flag and _FLAG_VALUE.fullmatch(token) and not token.startswith("-"):
            previous_was_flag = False
        else:
            raise _bad("trainArgs", raw, allowed)
    if check is not None:
        try:
            check(tokens)
        except ConfigError as error:
            said = str(error).split(": error: ", 1)[-1]  # argparse's "prog: error: message"
            raise ConfigError(f"context key 'trainArgs': {shown(raw)} is not allowed; `python -m training train` "
                              f"says: {said} (set it with -c trainArgs=...)") from None
    return shlex.join(tokens)


def _repo_token_secret(raw: Any) -> str | None:
    secret = _optional(raw)
    if isinstance(secret, str) and _TOKEN.fullmatch(secret):  # the token itself: not repeated in the message
        raise ConfigError("context key 'repoTokenSecret': the value looks like a token itself (not shown); store the "
                          "token in Secrets Manager and give the secret's name or ARN "
                          "(set it with -c repoTokenSecret=...)")
    if secret is not None and (not isinstance(secret, str) or not _SECRET.fullmatch(secret)):
        raise _bad("repoTokenSecret", raw, "a Secrets Manager secret name (1-512 of letters, digits and "
                                           "/ _ + = . @ -) or its ARN (arn:aws:secretsmanager:REGION:ACCOUNT:"
                                           "secret:NAME), or empty for a public repoUrl")
    return secret


def _git_commit(repo_url: str | None, git_ref: str, resolve: ResolveCommit | None) -> tuple[str | None, str | None]:
    """(commit, None) or (None, why not): a 40-hex gitRef is the commit; otherwise `resolve` looks it up."""
    if FULL_COMMIT.fullmatch(git_ref):
        return git_ref.lower(), None
    if repo_url is None:
        return None, f"gitRef {git_ref!r} was not resolved to a commit: no repoUrl"
    if resolve is None:
        return None, f"gitRef {git_ref!r} was not resolved to a commit (no lookup at this synth)"
    commit, note = resolve(repo_url, git_ref)
    if commit is None or not FULL_COMMIT.fullmatch(commit):
        return None, note or f"could not resolve gitRef {git_ref!r} to a commit on {repo_url}"
    return commit.lower(), None
