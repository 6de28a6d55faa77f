"""Notifications on a bare stack of its own: the KMS-encrypted, TLS-only topic, with and without an email."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stacks.helpers import Synth, bare_stack, synth_stack
from training.errors import ConfigError


def build(outdir: Path, email: str | None, alarm_prefix: str | None = None) -> Synth:

    from stacks.notifications import Notifications

    app, stack = bare_stack(outdir, "NotificationsTest")
    Notifications(stack, "Notifications", email=email, alarm_prefix=alarm_prefix)
    return synth_stack(app, stack, outdir)


def test_topic_is_encrypted_tls_only_with_email(tmp_path: Path) -> None:
    s = build(tmp_path, "ml-team@example.com")
    topic = s.one("AWS::SNS::Topic")
    [key_id] = s.resources("AWS::KMS::Key")
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert s.one("AWS::KMS::Key")["EnableKeyRotation"] is True
    deny = [st for st in s.one("AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"] if st["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    subscription = s.one("AWS::SNS::Subscription")
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ml-team@example.com")


def test_the_auto_scaling_service_role_may_use_the_key(tmp_path: Path) -> None:
    s = build(tmp_path, None)
    assert s.resources("AWS::SNS::Subscription") == {}
    statements = s.one("AWS::KMS::Key")["KeyPolicy"]["Statement"]
    [autoscaling] = [st for st in statements if st.get("Sid") == "AutoScalingNotifications"]
    assert set(autoscaling["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}


def test_cloudwatch_publishes_only_with_an_alarm_prefix(tmp_path: Path) -> None:
    plain = build(tmp_path / "plain", None)
    assert not [st for st in plain.one("AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"]
                if st.get("Sid") == "RunAlarms"]
    alarms = build(tmp_path / "alarms", None, alarm_prefix="Team-")
    [publish] = [st for st in alarms.one("AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"]
                 if st.get("Sid") == "RunAlarms"]
    assert publish["Effect"] == "Allow" and publish["Action"] == "sns:Publish"
    assert publish["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Join"][1][-1] == ":alarm:Team-*"


def test_bad_email_is_one_line(tmp_path: Path) -> None:
    from training.cloud.core.settings import validate_email

    with pytest.raises(ConfigError, match="context key 'notifyEmail'"):
        validate_email("me@example.com; rm -rf /")
    assert validate_email("a.b+c@example.co.uk") == "a.b+c@example.co.uk"
    with pytest.raises(ConfigError, match="context key 'notifyEmail'"):
        build(tmp_path, "not-an-address")
