"""ArtifactStore on a bare stack of its own: the artifacts bucket's lifecycle rules (every run's scratch keys,
layout.py), its access-log bucket, retention (or emptied and deleted on request), and an existing bucket instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stacks.helpers import Synth, bare_stack, synth_stack


def build(outdir: Path, *, existing_bucket: str | None = None, retain: bool = True) -> tuple[Synth, object]:

    from stacks.storage import ArtifactStore

    app, stack = bare_stack(outdir, "StorageTest")
    store = ArtifactStore(stack, "Storage", existing_bucket=existing_bucket, checkpoint_expiry_days=5, retain=retain)
    return synth_stack(app, stack, outdir), store


@pytest.fixture(scope="module")
def created(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return build(tmp_path_factory.mktemp("storage"))[0]


def test_one_rule_expires_every_runs_checkpoints_and_environment(created: Synth) -> None:
    """Whatever the run id (the shared bucket never changes per run): the rule's prefix holds every run's
    checkpoints and packed environment, and nothing a run keeps (status, artifacts, logs) or the uploaded data."""
    from training.cloud.core.layout import SCRATCH_PREFIX, RunKeys, data_key

    [artifacts] = [b for b in created.resources("AWS::S3::Bucket").values()
                   if "LoggingConfiguration" in b["Properties"]]
    rules = {r["Id"]: r for r in artifacts["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert set(rules) == {"abort-incomplete-multipart-uploads", "expire-noncurrent-versions", "expire-run-scratch"}
    scratch = rules["expire-run-scratch"]
    assert (scratch["Prefix"], scratch["ExpirationInDays"], scratch["Status"]) == (SCRATCH_PREFIX, 5, "Enabled")
    assert scratch["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1
    for run_id in ("exp-7", "lc-2026-11", "default", "a"):
        keys = RunKeys(run_id)
        for kept in (keys.status_key, keys.artifact_key("model.keras"), keys.log_key(1), data_key("loans.csv")):
            assert not kept.startswith(scratch["Prefix"]), kept
        for expiring in (keys.checkpoint_key("training_metadata.json"), keys.env_prefix + "abc.tar.zst"):
            assert expiring.startswith(scratch["Prefix"]), expiring


def test_both_buckets_are_private_tls_only_and_retained(created: Synth) -> None:
    buckets = created.resources("AWS::S3::Bucket")
    assert len(buckets) == 2
    for bucket in buckets.values():
        assert bucket["DeletionPolicy"] == "Retain"
        assert bucket["Properties"]["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert len(created.resources("AWS::S3::BucketPolicy")) == 2


def test_emptied_and_deleted_on_request(tmp_path: Path) -> None:
    synth, _ = build(tmp_path, retain=False)
    buckets = synth.resources("AWS::S3::Bucket")
    assert {b["DeletionPolicy"] for b in buckets.values()} == {"Delete"}
    emptied = [r["Properties"]["BucketName"] for r in synth.resources("Custom::S3AutoDeleteObjects").values()]
    assert sorted(e["Ref"] for e in emptied) == sorted(buckets)


def test_an_existing_bucket_is_used_as_it_is(tmp_path: Path) -> None:
    synth, store = build(tmp_path, existing_bucket="team-models")
    assert synth.template.get("Resources", {}) == {}
    assert (store.created, store.log_bucket) == (False, None)
    assert store.bucket.bucket_name == "team-models"
