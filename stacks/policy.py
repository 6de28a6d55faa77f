"""IAM helpers the constructs share: an Auto Scaling group's ARN by its name, publishing to the encrypted topic, and
cdk-nag acknowledgements of the wildcards a role needs (AwsSolutions-IAM5), each with its reason."""
from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, Aws, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import IConstruct


def group_arn(group_name: str) -> str:
    """The ARN of the Auto Scaling group named `group_name` (its UUID is only known after creation: '*')."""
    return (f"arn:{Aws.PARTITION}:autoscaling:{Aws.REGION}:{Aws.ACCOUNT_ID}:autoScalingGroup:*"
            f":autoScalingGroupName/{group_name}")


def grant_publish(role: iam.IRole, topic: sns.ITopic, key_arn: str | None) -> None:
    """sns:Publish on the topic and, for an encrypted topic, the two KMS actions SNS calls with the publisher's
    credentials (kms:GenerateDataKey, kms:Decrypt) on its key only. Named exactly: topic.grant_publish would add
    kms:GenerateDataKey* (a wildcard action) and is not available for the shared stack's imported topic."""
    role.add_to_principal_policy(iam.PolicyStatement(sid="TopicPublish", actions=["sns:Publish"],
                                                     resources=[topic.topic_arn]))
    if key_arn is not None:
        role.add_to_principal_policy(iam.PolicyStatement(sid="TopicKey", actions=["kms:GenerateDataKey", "kms:Decrypt"],
                                                         resources=[key_arn]))


def acknowledge_wildcards(role: iam.IRole, *, resources: Mapping[str, str] | None = None,
                          actions: Mapping[str, str] | None = None) -> None:
    """Acknowledge cdk-nag's AwsSolutions-IAM5 finding for each wildcard resource and action, with its reason."""
    for resource, reason in (resources or {}).items():
        Validations.of(role).acknowledge(Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::{nag_resource(role, resource)}]", reason=reason))
    for action, reason in (actions or {}).items():
        Validations.of(role).acknowledge(Acknowledgment(id=f"AwsSolutions-IAM5[Action::{action}]", reason=reason))


def nag_resource(scope: IConstruct, resource: str) -> str:
    """An IAM resource as cdk-nag names it in a finding id: Fn::GetAtt -> <Id.Attr>, Ref -> <Id>."""

    def text(value: object) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(text(part) for part in parts)
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            return "<{}.{}>".format(*value["Fn::GetAtt"])
        if isinstance(value, dict) and "Ref" in value:
            return f"<{value['Ref']}>"
        if isinstance(value, dict) and "Fn::ImportValue" in value:  # a shared stack's export, e.g. the bucket
            return text(value["Fn::ImportValue"])
        raise ValueError(f"cannot name IAM resource {value!r}")

    return text(Stack.of(scope).resolve(resource))
