"""The training instance of one run: least-privilege role, log group, launch template and a one-instance spot Auto
Scaling group. Part of the run's stack; the bucket, topic, VPC and security group are the shared stack's."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Annotations, Aws, Duration, RemovalPolicy, Validations
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks import user_data
from stacks.cloud_code import CloudCode
from stacks.policy import acknowledge_wildcards, grant_publish, group_arn
from training.cloud.core.layout import RUNS_PREFIX, SCRATCH_PREFIX
from training.cloud.core.settings import RunConfig

# What the SSM agent needs for Session Manager (the only way in: no SSH, no inbound rules) and nothing else: no
# Parameter Store, documents, inventory or patching, which the managed AmazonSSMManagedInstanceCore would allow.
# None of these actions supports resource-level permissions.
SESSION_MANAGER_ACTIONS = (
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage",
    "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply",
)


def root_device_name(ami_parameter: str) -> str:
    """Root device of the AMI family: Ubuntu images boot from /dev/sda1, Amazon Linux from /dev/xvda."""
    return "/dev/sda1" if "ubuntu" in ami_parameter.lower() else "/dev/xvda"


class SpotCompute(Construct):
    """`log_group`, `role`, `launch_template` and `group` (the ASG) of one run.

    The log group is kept when the run's stack is destroyed (`keep_logs`, the default), like the run's files in
    the bucket, so `logs` still reads a finished run's lines until they reach logRetentionDays.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: RunConfig, vpc: ec2.IVpc,
                 security_group: ec2.ISecurityGroup, bucket: s3.IBucket, log_retention: logs.RetentionDays,
                 boot_kit: CloudCode, topic: sns.ITopic, topic_key_arn: str | None, keep_logs: bool = True) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "RunLogs", log_group_name=config.log_group_name,
                                       retention=log_retention,
                                       removal_policy=RemovalPolicy.RETAIN if keep_logs else RemovalPolicy.DESTROY)
        self.role = self._role(config)
        self._grant_run(config, bucket)
        self._grant_data(config)
        grant_publish(self.role, topic, topic_key_arn)
        boot_kit.grant_read(self.role)
        self.launch_template = self._launch_template(config, security_group, user_data.render(
            config, user_data.Deployed(bucket=bucket.bucket_name, region=Aws.REGION,
                                       topic_arn=topic.topic_arn, boot_kit_uri=boot_kit.object_url)))
        self.group = self._group(config, vpc, topic)

    # ---------------------------------------------------------------- the instance role

    def _role(self, config: RunConfig) -> iam.Role:
        return iam.Role(
            self, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description=f"spotgrade run {config.run_id}: data read, run prefix read/write, own logs and group "
                        "capacity, Session Manager")

    def _grant_run(self, config: RunConfig, bucket: s3.IBucket) -> None:
        """The run's keys, its own log group and Auto Scaling group, Session Manager and the read-only Describe
        calls."""
        keys = config.keys
        run_objects = bucket.arn_for_objects(f"{keys.prefix}*")
        scratch_objects = bucket.arn_for_objects(f"{keys.scratch_prefix}*")
        own_group = group_arn(config.asg_name)
        for statement in [
            iam.PolicyStatement(
                sid="RunPrefixReadWrite",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                         "s3:ListMultipartUploadParts"],
                resources=[run_objects, scratch_objects]),
            iam.PolicyStatement(
                sid="RunPrefixList", actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{keys.prefix}*", f"{keys.scratch_prefix}*"]}}),
            iam.PolicyStatement(
                sid="OwnLogGroup", actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[self.log_group.log_group_arn]),
            # Desired capacity only (the group's MinSize is 0, MaxSize 1): never its size limits or settings.
            iam.PolicyStatement(
                sid="OwnAutoScalingGroup", actions=["autoscaling:SetDesiredCapacity"], resources=[own_group]),
            iam.PolicyStatement(sid="SessionManager", actions=list(SESSION_MANAGER_ACTIONS), resources=["*"]),
            # Describe* calls support no resource-level permissions: AWS requires "*" here.
            iam.PolicyStatement(
                sid="DescribeOnly", actions=["ec2:DescribeSpotPriceHistory", "autoscaling:DescribeAutoScalingGroups"],
                resources=["*"]),
        ]:
            self.role.add_to_policy(statement)
        # Every wildcard, with the reason it is as narrow as AWS allows (cdk-nag AwsSolutions-IAM5).
        acknowledge_wildcards(self.role, resources={
            "*": "Session Manager's agent calls and the read-only Describe calls (spot price history, the own "
                 "group's capacity) have no resource-level permissions.",
            run_objects: f"Only this run's prefix {RUNS_PREFIX}<runId>/ of the artifacts bucket.",
            scratch_objects: f"Only this run's checkpoints and packed environment, {SCRATCH_PREFIX}<runId>/.",
            own_group:
                "The group's UUID is only known after creation; the explicit name pins it to this run's group.",
        })

    def _grant_data(self, config: RunConfig) -> None:
        """Read-only access to dataUri's object or prefix, where one is given."""
        location = config.data_location
        if location is None:
            return
        data_bucket, data_prefix = location
        data_objects = f"arn:{Aws.PARTITION}:s3:::{data_bucket}/{data_prefix}*"
        self.role.add_to_policy(iam.PolicyStatement(sid="DataRead", actions=["s3:GetObject"],
                                                    resources=[data_objects]))
        self.role.add_to_policy(iam.PolicyStatement(
            sid="DataList", actions=["s3:ListBucket"], resources=[f"arn:{Aws.PARTITION}:s3:::{data_bucket}"],
            conditions={"StringLike": {"s3:prefix": [f"{data_prefix}*"]}}))
        acknowledge_wildcards(self.role, resources={
            data_objects: "Read-only: the data object or prefix given as dataUri."})

    # ---------------------------------------------------------------- launch template and group

    def _launch_template(self, config: RunConfig, security_group: ec2.ISecurityGroup,
                         script: str) -> ec2.LaunchTemplate:
        return ec2.LaunchTemplate(
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

    def _group(self, config: RunConfig, vpc: ec2.IVpc, topic: sns.ITopic) -> autoscaling.AutoScalingGroup:
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
            notifications=[autoscaling.NotificationConfiguration(topic=topic)],
        )
        self._acknowledge_group(group)
        return group

    @staticmethod
    def _acknowledge_group(group: autoscaling.AutoScalingGroup) -> None:
        # One instance by design: desired=1 starts the run; the runner (or the user data on failure) sets 0.
        Annotations.of(group).acknowledge_warning(
            "@aws-cdk/aws-autoscaling:desiredCapacitySet",
            "Each deploy is meant to (re)start the run with one instance.")
        Validations.of(group).acknowledge(Acknowledgment(
            id="AwsSolutions-EC26",
            reason="The root volume is encrypted in the launch template (tests assert it); the rule cannot "
                   "follow the group's intrinsic launch template reference and errors instead."))
