"""stacks/policy.py: a group's ARN by name, and cdk-nag's names for IAM resources (imports too)."""

from __future__ import annotations


def test_group_arn_and_nag_resource_names() -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_s3 as s3

    from stacks.policy import group_arn, nag_resource

    stack = Stack(App(), "PolicyTest")
    bucket = s3.Bucket(stack, "Bucket")
    assert nag_resource(stack, group_arn("Spotgrade-exp-7")) == (
        "arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup:*"
        ":autoScalingGroupName/Spotgrade-exp-7")
    bucket_id = stack.get_logical_id(bucket.node.default_child)
    assert nag_resource(stack, bucket.bucket_arn) == f"<{bucket_id}.Arn>"
    assert nag_resource(stack, bucket.arn_for_objects("runs/*")) == f"<{bucket_id}.Arn>/runs/*"
    from aws_cdk import Fn

    imported = s3.Bucket.from_bucket_name(stack, "Imported", Fn.import_value("Spotgrade:BucketName"))
    assert nag_resource(stack, imported.arn_for_objects("scratch/r/*")) == (
        "arn:<AWS::Partition>:s3:::Spotgrade:BucketName/scratch/r/*")
