"""The training instance: least-privilege role, launch template and a one-instance spot Auto Scaling group."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Annotations, Aws, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks import user_data
from stacks.cloud_code import CloudCode
from stacks.config import RunConfig


def root_device_name(ami_parameter: str) -> str:
    """Root device of the AMI family: Ubuntu images boot from /dev/sda1, Amazon Linux from /dev/xvda."""
    return "/dev/sda1" if "ubuntu" in ami_parameter.lower() else "/dev/xvda"


class SpotCompute(Construct):
    """`role`, `launch_template`, `group` (the ASG) and `log_group` of one run."""

    def __init__(self, scope: Construct, construct_id: str, *, config: RunConfig, vpc: ec2.IVpc,
                 security_group: ec2.ISecurityGroup, bucket: s3.IBucket, log_retention: logs.RetentionDays,
                 boot_kit: CloudCode, topic: sns.ITopic | None = None) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "RunLogs", log_group_name=config.log_group_name,
                                       retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.role = self._role(config, bucket, topic)
        boot_kit.grant_read(self.role)

        script = user_data.render(config, user_data.Deployed(
            bucket=bucket.bucket_name, region=Aws.REGION, topic_arn=topic.topic_arn if topic else "",
            boot_kit_uri=boot_kit.object_url))
        self.launch_template = ec2.LaunchTemplate(
            self, "LaunchTemplate",
            machine_image=ec2.MachineImage.from_ssm_parameter(config.ami_parameter),
            role=self.role,
            security_group=security_group,
            user_data=ec2.UserData.custom(script),
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            detailed_monitoring=True,
            instance_initiated_shutdown_behavior=ec2.InstanceInitiatedShutdownBehavior.TERMINATE,
            associate_public_ip_address=True,  # no NAT gateway: egress (git, pip, S3) via the internet gateway
            block_devices=[ec2.BlockDevice(
                device_name=root_device_name(config.ami_parameter),
                volume=ec2.BlockDeviceVolume.ebs(config.root_volume_gib, volume_type=ec2.EbsDeviceVolumeType.GP3,
                                                 encrypted=True, delete_on_termination=True))],
        )
        self.group = self._group(config, vpc, topic)

    def _role(self, config: RunConfig, bucket: s3.IBucket, topic: sns.ITopic | None) -> iam.Role:
        role = iam.Role(
            self, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description=f"spotgrade run {config.run_id}: data read, run prefix read/write, own logs and ASG",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")])
        Validations.of(role).acknowledge(Acknowledgment(
            id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
            reason="SSM core is the only way in (Session Manager; no SSH, no inbound rules); AWS keeps it current."))
        run_objects = bucket.arn_for_objects(f"{config.run_prefix}*")
        own_group = (f"arn:{Aws.PARTITION}:autoscaling:{Aws.REGION}:{Aws.ACCOUNT_ID}:autoScalingGroup:*"
                     f":autoScalingGroupName/{config.asg_name}")
        statements = [
            iam.PolicyStatement(
                sid="RunPrefixReadWrite",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                         "s3:ListMultipartUploadParts"],
                resources=[run_objects]),
            iam.PolicyStatement(
                sid="RunPrefixList", actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{config.run_prefix}*"]}}),
            iam.PolicyStatement(
                sid="OwnLogGroup", actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[self.log_group.log_group_arn]),
            iam.PolicyStatement(
                sid="OwnAutoScalingGroup",
                actions=["autoscaling:SetDesiredCapacity", "autoscaling:UpdateAutoScalingGroup"],
                resources=[own_group]),
            # Describe* calls support no resource-level permissions: AWS requires "*" here.
            iam.PolicyStatement(
                sid="DescribeOnly", actions=["ec2:DescribeSpotPriceHistory", "autoscaling:DescribeAutoScalingGroups"],
                resources=["*"]),
        ]
        # Every wildcard, with the reason it is as narrow as AWS allows (cdk-nag AwsSolutions-IAM5).
        acknowledged = {
            "*": "Describe calls (spot price history for the cost record, the own group's capacity) "
                 "have no resource-level permissions; they are read-only.",
            run_objects: "Only this run's prefix runs/<runId>/ of the artifacts bucket.",
            own_group:
                "The group's UUID is only known after creation; the explicit name pins it to this run's group.",
        }
        location = config.data_location
        if location is not None:
            data_bucket, data_prefix = location
            data_objects = f"arn:{Aws.PARTITION}:s3:::{data_bucket}/{data_prefix}*"
            statements += [
                iam.PolicyStatement(
                    sid="DataRead", actions=["s3:GetObject"],
                    resources=[data_objects]),
                iam.PolicyStatement(
                    sid="DataList", actions=["s3:ListBucket"], resources=[f"arn:{Aws.PARTITION}:s3:::{data_bucket}"],
                    conditions={"StringLike": {"s3:prefix": [f"{data_prefix}*"]}}),
            ]
            acknowledged[data_objects] = "Read-only: the data object or prefix given as dataUri."
        for statement in statements:
            role.add_to_policy(statement)
        if topic is not None:
            topic.grant_publish(role)
            if topic.master_key is not None:  # an SSE topic: grant_publish adds its key's data-key actions
                Validations.of(role).acknowledge(Acknowledgment(
                    id="AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
                    reason="Publishing to the encrypted notifications topic needs data keys; the statement's "
                           "resource is that topic's own KMS key only."))
        for resource, reason in acknowledged.items():
            Validations.of(role).acknowledge(Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{nag_resource(self, resource)}]", reason=reason))
        return role

    def _group(self, config: RunConfig, vpc: ec2.IVpc, topic: sns.ITopic | None) -> autoscaling.AutoScalingGroup:
        spot = config.capacity == "spot"
        distribution = autoscaling.InstancesDistribution(
            on_demand_base_capacity=0,
            on_demand_percentage_above_base_capacity=0 if spot else 100,
            spot_allocation_strategy=autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED if spot else None,
            spot_max_price=None if config.max_spot_price is None else f"{config.max_spot_price:g}",
            on_demand_allocation_strategy=autoscaling.OnDemandAllocationStrategy.PRIORITIZED,
        )
        group = autoscaling.AutoScalingGroup(
            self, "Group",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            auto_scaling_group_name=config.asg_name,
            mixed_instances_policy=autoscaling.MixedInstancesPolicy(
                launch_template=self.launch_template,
                instances_distribution=distribution,
                launch_template_overrides=[autoscaling.LaunchTemplateOverrides(instance_type=ec2.InstanceType(t))
                                           for t in config.instance_types]),
            min_capacity=0, max_capacity=1, desired_capacity=1,
            cooldown=Duration.minutes(5),
            health_checks=autoscaling.HealthChecks.ec2(grace_period=Duration.minutes(10)),
            notifications=[autoscaling.NotificationConfiguration(topic=topic)] if topic is not None else None,
        )
        # One instance by design: desired=1 starts the run; the runner (or the user data on failure) sets 0.
        Annotations.of(group).acknowledge_warning(
            "@aws-cdk/aws-autoscaling:desiredCapacitySet",
            "Each deploy is meant to (re)start the run with one instance.")
        Validations.of(group).acknowledge(Acknowledgment(
            id="AwsSolutions-EC26",
            reason="The root volume is encrypted in the launch template (tests assert it); the rule cannot "
                   "follow the group's intrinsic launch template reference and errors instead."))
        if topic is None:
            Validations.of(group).acknowledge(Acknowledgment(
                id="AwsSolutions-AS3",
                reason="No notification topic is configured; the runner records every launch and "
                       "interruption in the run's status.json. With a topic, all scaling events go to it."))
        return group


def nag_resource(scope: Construct, resource: str) -> str:
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
        raise ValueError(f"cannot name IAM resource {value!r}")

    return text(Stack.of(scope).resolve(resource))
