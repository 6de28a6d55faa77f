"""ArtifactStore on a bare stack of its own: the artifacts bucket's lifecycle rules under the run's keys
(layout.py), its access-log bucket, retention, and an existing bucket instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stacks.helpers import Synth, bare_stack, synth_stack


def build(outdir: Path, *, existing_bucket: str | None = None, retain: bool = True) -> tuple[Synth, object]:

    from stacks.storage import ArtifactStore

    app, stack = bare_stack(outdir, "StorageTest")
    store = ArtifactStore(stack, "Storage", existing_bucket=existing_bucket, run_id="exp-7",
                          checkpoint_expiry_days=5, retain=retain)
    return synth_stack(app, stack, outdir), store


@pytest.fixture(scope="module")
def created(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return build(tmp_path_factory.mktemp("storage"))[0]


def test_run_rules_expire_the_runs_checkpoints_and_environment(created: Synth) -> None:
    from training.cloud.core.layout import RunKeys

    keys = RunKeys("exp-7")
    [artifacts] = [b for b in created.resources("AWS::S3::Bucket").values()
                   if "LoggingConfiguration" in b["Properties"]]
    rules = {r["Id"]: r for r in artifacts["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert (rules["expire-run-checkpoints"]["Prefix"], rules["expire-run-checkpoints"]["ExpirationInDays"]) == (
        keys.checkpoints_prefix, 5)
    assert (rules["expire-run-environment"]["Prefix"], rules["expire-run-environment"]["ExpirationInDays"]) == (
        keys.env_prefix, 5)
    assert keys.checkpoints_prefix == "runs/exp-7/checkpoints/" and keys.env_prefix == "runs/exp-7/env/"
    assert set(rules) == {"abort-incomplete-multipart-uploads", "expire-noncurrent-versions",
                          "expire-run-checkpoints", "expire-run-environment"}


def test_both_buckets_are_private_tls_only_and_retained(created: Synth) -> None:
    buckets = created.resources("AWS::S3::Bucket")
    assert len(buckets) == 2
    for bucket in buckets.values():
        assert bucket["DeletionPolicy"] == "Retain"
        assert bucket["Properties"]["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert len(created.resources("AWS::S3::BucketPolicy")) == 2


def test_not_retained_on_request(tmp_path: Path) -> None:
    synth, _ = build(tmp_path, retain=False)
    assert {b["DeletionPolicy"] for b in synth.resources("AWS::S3::Bucket").values()} == {"Delete"}


def test_an_existing_bucket_is_used_as_it_is(tmp_path: Path) -> None:
    synth, store = build(tmp_path, existing_bucket="team-models")
    assert synth.template.get("Resources", {}) == {}
    assert (store.created, store.log_bucket) == (False, None)
    assert store.bucket.bucket_name == "team-models"
