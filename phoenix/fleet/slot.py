"""One Auto Scaling slot of a fleet: its target group, launch template and group."""

from __future__ import annotations

import jsii
from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from phoenix.config.environment import FleetConfig
from phoenix.fleet.controller_state import ssm_reference
from phoenix.kernel.names import Slot, SlotSetting, release_pointer, resource_name, slot_parameter

ROOT_DEVICE = "/dev/xvda"  # Amazon Linux 2023's root device


@jsii.implements(ec2.IMachineImage)
class _ReleasePointerImage:
    """The release pointer, read by CloudFormation when the launch template is deployed.

    A deploy-time `{{resolve:ssm:...}}` reference: never the launch-time `resolve:ssm:`
    image id, with which Auto Scaling would launch whatever the parameter says at that
    moment and instance-refresh rollback could not return to the previous AMI.
    """

    def __init__(self, parameter_name: str) -> None:
        self._parameter_name = parameter_name

    def get_image(self, scope: Construct) -> ec2.MachineImageConfig:  # noqa: ARG002
        return ec2.MachineImageConfig(
            image_id=ssm_reference(self._parameter_name),
            os_type=ec2.OperatingSystemType.LINUX,
            user_data=ec2.UserData.for_linux(),
        )


class FleetSlot(Construct):
    """A slot: Auto Scaling group `phoenix-<env>-<fleet>-<slot>` with its launch template
    and target group.

    Instances: private subnets, no public address, IMDSv2 only (hop limit 1), no key
    pair, an encrypted gp3 root volume (`key`), detailed monitoring, ELB health checks
    after a grace period, capacity rebalancing, launch before terminate, replaced every
    `config.max_instance_lifetime_days`; scaling events notify `notifications`. The AMI,
    the launch template version and the minimum size are the release controller's,
    read from SSM at deploy time; CloudFormation never sets a desired capacity.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment: str,
        config: FleetConfig,
        slot: Slot,
        vpc: ec2.IVpc,
        key: kms.IKey,
        instance_role: iam.IRole,
        security_group: ec2.ISecurityGroup,
        notifications: sns.ITopic,
    ) -> None:
        super().__init__(scope, id)
        target_group = elbv2.ApplicationTargetGroup(
            self,
            "TargetGroup",
            vpc=vpc,
            port=config.instance_port,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.INSTANCE,
            deregistration_delay=Duration.seconds(config.health_check.deregistration_delay_seconds),
            health_check=elbv2.HealthCheck(
                path=config.health_check.path,
                interval=Duration.seconds(config.health_check.interval_seconds),
                healthy_threshold_count=config.health_check.healthy_threshold,
                unhealthy_threshold_count=config.health_check.unhealthy_threshold,
            ),
        )
        launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            machine_image=_ReleasePointerImage(release_pointer(environment, config.name)),
            instance_type=ec2.InstanceType(config.instance_type),
            role=instance_role,
            security_group=security_group,
            require_imdsv2=True,
            http_tokens=ec2.LaunchTemplateHttpTokens.REQUIRED,
            http_put_response_hop_limit=1,
            detailed_monitoring=True,
            associate_public_ip_address=False,
            block_devices=[
                ec2.BlockDevice(
                    device_name=ROOT_DEVICE,
                    volume=ec2.BlockDeviceVolume.ebs(
                        config.root_volume_gib,
                        encrypted=True,
                        kms_key=key,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        delete_on_termination=True,
                    ),
                )
            ],
        )
        group = autoscaling.AutoScalingGroup(
            self,
            "AutoScalingGroup",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            launch_template=launch_template,
            auto_scaling_group_name=resource_name(environment, config.name, slot),
            min_capacity=0,
            max_capacity=config.capacity.max,
            health_checks=autoscaling.HealthChecks.with_additional_checks(
                additional_types=[autoscaling.AdditionalHealthCheckType.ELB],
                grace_period=Duration.seconds(config.health_check.grace_period_seconds),
            ),
            capacity_rebalance=True,
            max_instance_lifetime=Duration.days(config.max_instance_lifetime_days),
            min_healthy_percentage=100,
            max_healthy_percentage=200,
            group_metrics=[autoscaling.GroupMetrics.all()],
            default_instance_warmup=Duration.seconds(config.health_check.grace_period_seconds),
            # launch and terminate errors only: a release replaces every instance, and a
            # message per instance is noise (the release's own messages say what happened)
            notifications=[
                autoscaling.NotificationConfiguration(
                    topic=notifications, scaling_events=autoscaling.ScalingEvents.ERRORS
                )
            ],
        )
        Validations.of(group).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-AS3",
                reason="Only launch and terminate errors notify the people's topic: a release "
                "replaces every instance, and a message per instance launched or terminated "
                "is noise; the release's own messages say what happened, as text.",
            )
        )
        group.attach_to_application_target_group(target_group)
        resource = group.node.default_child
        assert isinstance(resource, autoscaling.CfnAutoScalingGroup)
        owned: dict[str, SlotSetting] = {
            "MinSize": "min-size",
            "LaunchTemplate.Version": "launch-template-version",
        }
        for prop, setting in owned.items():
            resource.add_property_override(
                prop,
                ssm_reference(slot_parameter(environment, config.name, slot, setting)),
            )
        self.target_group = target_group
        self.launch_template = launch_template
        self.group = group
