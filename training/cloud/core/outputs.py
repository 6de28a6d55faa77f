"""The run stack's CloudFormation output keys: declared by stacks/spotgrade_stack.py, read by
training/cloud/stack_outputs.py (the run-control commands find the run through them)."""
from __future__ import annotations

BUCKET_NAME = "BucketName"
RUN_ID = "RunId"
RUN_PREFIX = "RunPrefix"
ASG_NAME = "AutoScalingGroupName"
LOG_GROUP_NAME = "LogGroupName"
CONSOLE_LINK = "ConsoleLink"
TOPIC_ARN = "TopicArn"
