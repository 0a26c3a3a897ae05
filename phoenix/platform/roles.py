"""Roles built on AWS-managed policies, each acknowledged for cdk-nag with its reason, and
the statements several components grant alike."""

from __future__ import annotations

from aws_cdk import Acknowledgment, ArnFormat, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import Construct


def managed_policy_role(
    scope: Construct,
    id: str,
    *,
    service: str,
    description: str,
    policies: dict[str, str],
) -> iam.Role:
    """A role `service` assumes, with the AWS-managed `policies` (name -> why it is used).

    cdk-nag flags every AWS-managed policy (AwsSolutions-IAM4); each is acknowledged on
    this role alone with the reason given.
    """
    role = iam.Role(
        scope,
        id,
        assumed_by=iam.ServicePrincipal(service),
        description=description,
        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(p) for p in policies],
    )
    for policy, reason in policies.items():
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM4"
                f"[Policy::arn:<AWS::Partition>:iam::aws:policy/{policy}]",
                reason=reason,
            )
        )
    return role


def parameter_arn(
    scope: Construct, name: str, *, account: str | None = None, region: str | None = None
) -> str:
    """The ARN of the SSM parameter (or parameter pattern) `name`, in the stack's region
    (or `region`); `account=""` for AWS's public parameters, whose ARNs have none."""
    return Stack.of(scope).format_arn(
        service="ssm",
        account=account,
        region=region,
        resource="parameter",
        resource_name=name.lstrip("/"),
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )


def put_events_on_default_bus(scope: Construct) -> iam.PolicyStatement:
    """events:PutEvents on the stack's default event bus, where phoenix's events go."""
    bus = Stack.of(scope).format_arn(
        service="events", resource="event-bus", resource_name="default"
    )
    return iam.PolicyStatement(actions=["events:PutEvents"], resources=[bus])
