"""The CDK context the settings come from: cdk.json's "context" plus `-c key=value`, the keys that are the
CDK's own, and the check that refuses any other unknown key (naming the closest setting).

Standard library only. What each setting means and allows is training/cloud/core/settings.py's.
"""
from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from training.cloud.core.settings import (
    DEFAULTS,
    REPO_ROOT,
    CheckTrainArgs,
    ResolveCommit,
    RunConfig,
    shown,
)
from training.errors import ConfigError

# The cdk.json of the checkout this package is in, wherever the command runs from; an installed copy outside a
# checkout has none, and the commands use DEFAULTS (the same values) with their -c / --stack overrides.
CDK_JSON = REPO_ROOT / "cdk.json"
# What the CDK CLI and its context providers put into every app's context; they are not spotgrade settings.
CDK_CONTEXT_KEYS = ("acknowledged-issue-numbers", "notices")
CDK_CONTEXT_PREFIXES = ("@", "aws:", "aws-cdk:", "cdk", "cli-",  # feature flags, aws:cdk:*, cli-telemetry
                        # context-provider lookups cached in cdk.context.json
                        "ami:", "availability-zones:", "hosted-zone:", "ssm:", "vpc-provider:",
                        "endpoint-service-availability-zones:", "load-balancer:", "load-balancer-listener:",
                        "security-group:", "key-provider:", "plugin:", "cc-api-provider:")


# ---------------------------------------------------------------- the context: cdk.json + -c key=value

def load_context(overrides: Iterable[str] = (), cdk_json: Path | None = CDK_JSON) -> dict[str, Any]:
    """DEFAULTS, overlaid with cdk.json's "context" (where the file exists), overlaid with `key=value` overrides
    (as `cdk -c`)."""
    context = dict(DEFAULTS)
    if cdk_json is not None and cdk_json.exists():
        context.update(_cdk_json_context(cdk_json))
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"-c {item!r}: expected key=value, e.g. -c maxRuntimeHours=4")
        context[key.strip()] = value
    return context


def _cdk_json_context(cdk_json: Path) -> dict[str, Any]:
    """cdk.json's "context" object; ConfigError (one line) for a file that is not JSON or not shaped like cdk.json."""
    try:
        document = json.loads(cdk_json.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{cdk_json}: not valid JSON ({error.msg} at line {error.lineno}); "
                          "fix the file") from None
    except (OSError, ValueError, RecursionError) as error:  # unreadable, not UTF-8, nested too deeply
        raise ConfigError(f"{cdk_json}: cannot be read ({type(error).__name__}); fix the file") from None
    context = document.get("context", {}) if isinstance(document, dict) else None
    if not isinstance(context, dict):
        raise ConfigError(f'{cdk_json}: expected a JSON object with a "context" object (key: value settings); '
                          "fix the file")
    return context


def cdk_context_args(args: Sequence[str]) -> list[str]:
    """The `key=value` of every `-c`/`--context` in CDK CLI arguments; the other arguments are not settings."""
    pairs: list[str] = []
    items = iter(args)
    for arg in items:
        if arg in ("-c", "--context"):
            pairs.append(next(items, ""))
        elif arg.startswith("--context="):
            pairs.append(arg.split("=", 1)[1])
        elif arg.startswith("-c") and len(arg) > 2:
            pairs.append(arg[2:])
    return pairs


# ---------------------------------------------------------------- the keys

def is_cdk_context_key(key: str) -> bool:
    """A key the CDK CLI or its context providers set (feature flags, aws:cdk:*, lookups), not a setting."""
    return key in CDK_CONTEXT_KEYS or key.startswith(CDK_CONTEXT_PREFIXES)


def check_context_keys(keys: Iterable[str]) -> None:
    """Refuse a context key that is neither a setting nor the CDK's own, naming the closest setting.

    One line, e.g. "context key 'maxRuntimeHour' is unknown; did you mean 'maxRuntimeHours'? (known keys: ...)".
    """
    unknown = [key for key in keys if key not in DEFAULTS and not is_cdk_context_key(str(key))]
    if not unknown:
        return
    key = str(unknown[0])
    by_lower = {known.lower(): known for known in DEFAULTS}
    word = re.match(r"[A-Za-z]*", key)  # the key's leading word: 'repoUrl' of 'repoUrl:https://...'
    close = (difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
             or difflib.get_close_matches(word.group().lower() if word else "", list(by_lower), n=1, cutoff=0.8))
    hint = f"; did you mean '{by_lower[close[0]]}'?" if close else ""
    more = f" ({len(unknown) - 1} more unknown: {', '.join(shown(k) for k in unknown[1:])})" if unknown[1:] else ""
    raise ConfigError(f"context key {shown(key)} is unknown{hint}{more} (known keys: {', '.join(DEFAULTS)})")


def read_settings(context: Mapping[str, Any], *, default_repo_url: Callable[[], str | None] | None = None,
                  resolve_commit: ResolveCommit | None = None,
                  check_train_args: CheckTrainArgs | None = None) -> RunConfig:
    """The validated settings of a whole context (cdk.json's, the app's `node.get_all_context()`, or
    `load_context`'s): unknown keys refused first (`check_context_keys`), then every value (`RunConfig.from_context`).
    """
    check_context_keys(context)
    return RunConfig.from_context(context.get, default_repo_url=default_repo_url, resolve_commit=resolve_commit,
                                  check_train_args=check_train_args)
