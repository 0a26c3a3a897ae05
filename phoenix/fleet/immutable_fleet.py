"""ImmutableFleet: two hardened Auto Scaling slots behind one weighted ALB listener."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aws_cdk import Acknowledgment, Stack, Tags, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from phoenix.config.environment import FleetConfig
from phoenix.fleet.alarms import FleetAlarms
from phoenix.fleet.controller_state import initial_slot_settings, ssm_reference
from phoenix.fleet.slot import FleetSlot
from phoenix.kernel.fleet_calls import weighted_forward
from phoenix.kernel.names import FLEET_TAG, Slot, release_pointer, slot_parameter
from phoenix.platform.nag import acknowledge_wildcard, nag_arn, skip_checkov
from phoenix.platform.roles import managed_policy_role, parameter_arn

AUTO_SCALING_WRITES = [
    "autoscaling:UpdateAutoScalingGroup",
    "autoscaling:StartInstanceRefresh",
    "autoscaling:CancelInstanceRefresh",
    "autoscaling:RollbackInstanceRefresh",
]
READS = [
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeInstanceRefreshes",
    "ec2:DescribeImages",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplateVersions",
    "elasticloadbalancing:DescribeTargetHealth",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:GetMetricData",
]
LAUNCHING = ("ec2:RunInstances", "iam:PassRole", "ec2:CreateTags")
# Every call the release controller makes on a fleet (the release and rollback runtimes).
RELEASE_ACTIONS = (
    *AUTO_SCALING_WRITES,
    "ec2:CreateLaunchTemplateVersion",
    # Auto Scaling checks that whoever points a group at a launch template may launch
    # from it: RunInstances, PassRole of its instance profile's role, and CreateTags for
    # the instances and volumes it tags on launch (Amazon EC2 Auto Scaling User Guide,
    # "Amazon EC2 Auto Scaling API permissions").
    *LAUNCHING,
    "elasticloadbalancing:ModifyListener",
    "ssm:GetParameters",
    "ssm:PutParameter",
    *READS,
)


class ImmutableFleet(Construct):
    """A fleet of identical instances that is only ever changed by replacing them.

    One ALB listener forwards by weight to two target groups, blue and green, each the
    target of an Auto Scaling slot (FleetSlot); a `rolling` fleet has blue only. The load
    balancer drops invalid headers, logs access to `access_logs`, serves HTTPS (HTTP
    redirects) when the fleet has a certificate and HTTP otherwise, and has deletion
    protection when `deletion_protection`. Instances admit only the load balancer, on the
    instance port; nothing admits SSH (Session Manager replaces it). Each slot scales on
    its own requests per target. Alarms: see FleetAlarms.

    The release controller owns the AMI, each slot's launch template version and
    minimum size, and the listener's weights: the templates read them through
    deploy-time references to the SSM parameters under `/phoenix/<env>/<fleet>/`
    (docs/adr/0004-controller-owned-state.md), so no deploy writes back a value a
    release set.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment: str,
        config: FleetConfig,
        vpc: ec2.IVpc,
        vpc_cidr: str,
        key: kms.IKey,
        access_logs: s3.IBucket,
        alarm_topic: sns.ITopic,
        deletion_protection: bool,
    ) -> None:
        super().__init__(scope, id)
        self.environment = environment
        self.config = config
        self.slots: tuple[Slot, ...] = config.slots
        Tags.of(self).add(FLEET_TAG, f"{environment}/{config.name}")

        self.load_balancer_security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=vpc,
            description=f"phoenix {environment}/{config.name} load balancer",
            allow_all_outbound=False,
        )
        self.instance_security_group = ec2.SecurityGroup(
            self,
            "InstanceSecurityGroup",
            vpc=vpc,
            description=f"phoenix {environment}/{config.name} instances: from the ALB only",
            allow_all_outbound=True,
        )
        self.load_balancer = self._load_balancer(vpc, vpc_cidr, access_logs, deletion_protection)
        self.instance_role = self._instance_role()

        self.slot_constructs = {
            slot: FleetSlot(
                self,
                slot.capitalize(),
                environment=environment,
                config=config,
                slot=slot,
                vpc=vpc,
                key=key,
                instance_role=self.instance_role,
                security_group=self.instance_security_group,
                notifications=alarm_topic,
            )
            for slot in self.slots
        }
        self.target_groups = {s: c.target_group for s, c in self.slot_constructs.items()}
        self.launch_templates = {s: c.launch_template for s, c in self.slot_constructs.items()}
        self.auto_scaling_groups = {s: c.group for s, c in self.slot_constructs.items()}

        self.listener = self._listener()
        for group in self.auto_scaling_groups.values():
            # Scaling follows each slot's own traffic: the serving slot grows and shrinks,
            # an idle slot (no requests) rests at its minimum. Nothing is ever suspended.
            group.scale_on_request_count(
                "RequestsPerInstance",
                target_requests_per_minute=config.target_requests_per_minute,
            )
        self.alarms_by_scope = FleetAlarms(
            self,
            "Alarms",
            environment=environment,
            config=config,
            load_balancer=self.load_balancer,
            target_groups=self.target_groups,
        )

    # -- the load balancer -------------------------------------------------------------

    def _load_balancer(
        self, vpc: ec2.IVpc, vpc_cidr: str, access_logs: s3.IBucket, deletion_protection: bool
    ) -> elbv2.ApplicationLoadBalancer:
        config = self.config
        balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            internet_facing=config.internet_facing,
            vpc_subnets=ec2.SubnetSelection(
                subnet_type=ec2.SubnetType.PUBLIC
                if config.internet_facing
                else ec2.SubnetType.PRIVATE_WITH_EGRESS
            ),
            security_group=self.load_balancer_security_group,
            drop_invalid_header_fields=True,
            deletion_protection=deletion_protection,
        )
        # The bucket's policy lets Elastic Load Balancing write (Observability); the
        # load balancer checks that it can when logging is switched on.
        balancer.set_attribute("access_logs.s3.enabled", "true")
        balancer.set_attribute("access_logs.s3.bucket", access_logs.bucket_name)
        balancer.set_attribute("access_logs.s3.prefix", f"{self.environment}/{config.name}")
        if access_logs.policy is not None:
            balancer.node.add_dependency(access_logs.policy)
        clients = ec2.Peer.any_ipv4() if config.internet_facing else ec2.Peer.ipv4(vpc_cidr)
        for port in (443, 80) if config.certificate_arn else (80,):
            self.load_balancer_security_group.add_ingress_rule(
                clients, ec2.Port.tcp(port), "clients of the fleet"
            )
        if config.internet_facing:
            Validations.of(self.load_balancer_security_group).acknowledge(
                Acknowledgment(
                    id="AwsSolutions::AwsSolutions-EC23",
                    reason="An internet-facing load balancer serves the public on its "
                    "listener ports only; instances accept traffic from it alone.",
                )
            )
            skip_checkov(
                self.load_balancer_security_group,
                "CKV_AWS_260",
                "An internet-facing load balancer: the public reaches the fleet on port 80 "
                "(its HTTP listener, or the redirect to HTTPS when the fleet has a "
                "certificate); instances accept traffic from this group alone.",
            )
        return balancer

    def _listener(self) -> elbv2.ApplicationListener:
        """One listener forwarding by weight; the weights are the controller's."""
        config = self.config
        groups = [self.target_groups[slot] for slot in self.slots]
        if config.certificate_arn:
            listener = self.load_balancer.add_listener(
                "Https",
                port=443,
                protocol=elbv2.ApplicationProtocol.HTTPS,
                certificates=[elbv2.ListenerCertificate.from_arn(config.certificate_arn)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                open=False,
                default_action=elbv2.ListenerAction.forward(groups),
            )
            self.load_balancer.add_redirect(source_port=80, target_port=443, open=False)
        else:
            listener = self.load_balancer.add_listener(
                "Http",
                port=80,
                protocol=elbv2.ApplicationProtocol.HTTP,
                open=False,
                default_action=elbv2.ListenerAction.forward(groups),
            )
            for check in ("CKV_AWS_2", "CKV_AWS_103"):  # HTTPS, and TLS 1.2 or later
                skip_checkov(
                    listener,
                    check,
                    f"The fleet {config.name} has no certificate_arn in its config, so its "
                    "listener serves HTTP; given one, phoenix serves HTTPS with a TLS 1.2+ "
                    "policy and port 80 only redirects.",
                )
        if len(groups) > 1:
            weights = [
                (
                    self.target_groups[slot].target_group_arn,
                    ssm_reference(slot_parameter(self.environment, config.name, slot, "weight")),
                )
                for slot in self.slots
            ]
            listener_resource = listener.node.default_child
            assert isinstance(listener_resource, elbv2.CfnListener)
            listener_resource.add_property_override(
                "DefaultActions",
                weighted_forward(weights),
            )
        return listener

    # -- the slots ---------------------------------------------------------------------

    def _instance_role(self) -> iam.Role:
        why = (
            "is AWS's maintained least-privilege policy for the SSM agent (Session Manager "
            "instead of SSH) and the CloudWatch agent."
        )
        return managed_policy_role(
            self,
            "InstanceRole",
            service="ec2.amazonaws.com",
            description=f"phoenix {self.environment}/{self.config.name} instances",
            policies={
                "AmazonSSMManagedInstanceCore": f"AmazonSSMManagedInstanceCore {why}",
                "CloudWatchAgentServerPolicy": f"CloudWatchAgentServerPolicy {why}",
            },
        )

    # -- what others use ---------------------------------------------------------------

    @property
    def alarms(self) -> list[cloudwatch.Alarm]:
        """Every alarm of the fleet: each slot's and the whole fleet's."""
        return self.alarms_by_scope.all

    def metric_error_rate(self, slot: Slot | None = None) -> cloudwatch.IMetric:
        """Target 5xx responses as a percentage of requests (the slot's, or the fleet's)."""
        return self.alarms_by_scope.metric_error_rate(slot)

    def metric_p99_latency(self, slot: Slot | None = None) -> cloudwatch.IMetric:
        """p99 of TargetResponseTime in seconds (the slot's, or the fleet's)."""
        return self.alarms_by_scope.metric_p99_latency(slot)

    def metric_unhealthy_hosts(self, slot: Slot | None = None) -> cloudwatch.IMetric:
        """Unhealthy targets (one slot's, or the sum over the fleet's slots)."""
        return self.alarms_by_scope.metric_unhealthy_hosts(slot)

    def grant_release(
        self, grantee: iam.IGrantable, actions: Iterable[str] = RELEASE_ACTIONS
    ) -> iam.Grant:
        """Grant `actions` (default: every call the release controller makes) on this
        fleet, each scoped as narrowly as IAM allows.

        Auto Scaling writes are scoped by the fleet's tag (`phoenix:fleet`); launch
        template versions, the listener and the controller's parameters by ARN; launching
        (which Auto Scaling checks when a group's launch template version changes) by the
        `ec2:LaunchTemplate` condition, and tagging on launch to instances and volumes
        created by RunInstances (`ec2:CreateAction`). The read-only calls support no resource-level
        permissions. The one wildcard finding this leaves is acknowledged on `grantee`.
        """
        wanted = set(actions)
        unknown = wanted - set(RELEASE_ACTIONS)
        if unknown:
            raise ValueError(f"grant_release: no scoping known for {sorted(unknown)}")
        stack = Stack.of(self)
        template_arns = [
            stack.format_arn(
                service="ec2", resource="launch-template", resource_name=lt.launch_template_id
            )
            for lt in self.launch_templates.values()
        ]
        parameter_arns = [parameter_arn(self, name) for name in self.controller_parameters]
        tagged = {
            "StringEquals": {
                f"aws:ResourceTag/{FLEET_TAG}": f"{self.environment}/{self.config.name}"
            }
        }
        scopes: list[tuple[list[str], list[str], dict[str, Any] | None]] = [
            (AUTO_SCALING_WRITES, ["*"], tagged),
            (["ec2:CreateLaunchTemplateVersion"], template_arns, None),
            (["ec2:RunInstances"], ["*"], {"ArnLike": {"ec2:LaunchTemplate": template_arns}}),
            (["iam:PassRole"], [self.instance_role.role_arn], None),
            (
                ["ec2:CreateTags"],
                [
                    stack.format_arn(service="ec2", resource=kind, resource_name="*")
                    for kind in ("instance", "volume")
                ],
                {"StringEquals": {"ec2:CreateAction": "RunInstances"}},
            ),
            (["elasticloadbalancing:ModifyListener"], [self.listener.listener_arn], None),
            (["ssm:GetParameters", "ssm:PutParameter"], parameter_arns, None),
            (READS, ["*"], None),
        ]
        grants = [
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=sorted(wanted & set(scope_actions)),
                resource_arns=resources,
                conditions=conditions,
            )
            for scope_actions, resources, conditions in scopes
            if wanted & set(scope_actions)
        ]
        if isinstance(grantee, Construct) and wanted & set(AUTO_SCALING_WRITES + READS):
            acknowledge_wildcard(
                grantee,
                "*",
                "Auto Scaling writes are limited by the fleet's tag, RunInstances by "
                "the fleet's launch templates; the other '*' actions are read-only calls "
                "that support no resource-level permissions.",
            )
        principal = grantee.grant_principal
        if isinstance(principal, Construct) and "ec2:CreateTags" in wanted:
            for kind in ("instance", "volume"):
                acknowledge_wildcard(
                    principal,
                    nag_arn(stack, "ec2", f"{kind}/*"),
                    "Tags on launch: instances and volumes Auto Scaling launches from the "
                    "fleet's templates have no ID before RunInstances; the statement "
                    "allows only ec2:CreateAction RunInstances.",
                )
        grant = grants[0]
        for other in grants[1:]:
            grant = grant.combine(other)
        return grant

    @property
    def controller_parameters(self) -> list[str]:
        """The SSM parameters holding this fleet's controller-owned state."""
        return [release_pointer(self.environment, self.config.name)] + [
            slot_parameter(self.environment, self.config.name, slot, setting)
            for slot, setting in initial_slot_settings(self.config)
        ]
