"""A private repository and the exact code deployed, as synthesized: with repoTokenSecret the instance role reads
exactly that secret (and without it no secret at all); the user data names the secret, never a token, and the
commit gitRef resolved to; an unresolved gitRef is a warning of the run stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.stacks.helpers import (
    CONTEXT,
    REPO_URL,
    AppSynth,
    Synth,
    as_list,
    flatten,
    identity_statements,
    instance_policy,
    synth,
    user_data_of,
)
from training.errors import ConfigError

SECRET = "spotgrade/repo-token"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:spotgrade/repo-token-AbC123"
COMMIT = "c0ffee" + "0" * 34
UNRESOLVED = "spotgrade:gitCommitUnresolved"


def resolve(repo_url: str, ref: str) -> tuple[str | None, str | None]:
    """A remote where gitRef names COMMIT (no network)."""
    assert (repo_url, ref) == (REPO_URL, CONTEXT["gitRef"])
    return COMMIT, None


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> AppSynth:
    """A private repository by the secret's name, with cdk-nag live (a finding would fail the synth)."""
    return synth(tmp_path_factory.mktemp("cdk-private"), {**CONTEXT, "repoTokenSecret": SECRET}, resolve=resolve)


def secret_statements(s: Synth) -> list[dict[str, Any]]:
    return [st for st in identity_statements(s) if any("secretsmanager" in a for a in as_list(st["Action"]))]


def warnings(s: Synth) -> list[str]:
    metadata = json.loads((s.outdir / f"{s.stack_name}.metadata.json").read_text())
    return [json.dumps(entry["data"]) for entries in metadata.values() for entry in entries
            if entry["type"] == "aws:cdk:warning"]


def test_the_instance_reads_exactly_that_secret(private: AppSynth) -> None:
    statement = instance_policy(private.run)["RepoTokenSecretRead"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "secretsmanager:GetSecretValue"
    # The name's ARN: Secrets Manager's six random characters, one `?` each; no `*` anywhere.
    assert flatten(statement["Resource"]) == (
        f"arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:{SECRET}-??????")
    assert secret_statements(private.run) == [statement]  # no other role, no other secret
    assert secret_statements(private.shared) == []


def test_a_secret_given_by_its_arn_is_granted_as_that_arn(tmp_path: Path) -> None:
    app = synth(tmp_path, {**CONTEXT, "repoTokenSecret": SECRET_ARN}, nag=False)
    [statement] = secret_statements(app.run)
    assert statement["Resource"] == SECRET_ARN and statement["Action"] == "secretsmanager:GetSecretValue"
    assert f"readonly SPOTGRADE_REPO_TOKEN_SECRET={SECRET_ARN}\n" in user_data_of(app.run)


def test_without_repo_token_secret_no_secret_may_be_read(default_synth: AppSynth) -> None:
    assert secret_statements(default_synth.run) == [] and secret_statements(default_synth.shared) == []
    assert "readonly SPOTGRADE_REPO_TOKEN_SECRET=''\n" in user_data_of(default_synth.run)


def test_the_user_data_names_the_secret_and_the_commit(private: AppSynth) -> None:
    script = user_data_of(private.run)
    assert f"readonly SPOTGRADE_REPO_TOKEN_SECRET={SECRET}\n" in script
    assert f"readonly SPOTGRADE_GIT_COMMIT={COMMIT}\n" in script  # what clone() checks out
    assert f"\nSPOTGRADE_GIT_COMMIT={COMMIT}\n" in script  # the env file: recorded by the runner
    assert "\nSPOTGRADE_ALLOW_UNPUSHED_CODE=false\n" in script
    assert "password=%s" in script and "x-access-token" in script  # the helper's, filled in by git at clone time
    assert not [w for w in warnings(private.run) if UNRESOLVED in w]


def test_an_unresolved_git_ref_is_a_warning_and_the_instance_checks_out_the_ref(default_synth: AppSynth) -> None:
    # default_synth has no lookup (resolve=None): each instance checks out what gitRef names when it boots.
    [warning] = [w for w in warnings(default_synth.run) if UNRESOLVED in w]
    assert "gitRef 'v1.2.0' was not resolved to a commit" in warning and "a replacement may run other code" in warning
    assert "readonly SPOTGRADE_GIT_COMMIT=''\n" in user_data_of(default_synth.run)


def test_synth_reads_the_whole_context_as_the_pre_flight_does() -> None:
    from stacks.spotgrade_stack import build_app

    with pytest.raises(ConfigError, match="context key 'maxRuntimeHour' is unknown; did you mean 'maxRuntimeHours'"):
        build_app({**CONTEXT, "maxRuntimeHour": "3"}, repo_dir=None, resolve=None)
    with pytest.raises(ConfigError, match="context key 'trainArgs': '--epohcs 40' is not allowed"):
        build_app({**CONTEXT, "trainArgs": "--epohcs 40"}, repo_dir=None, resolve=None)
