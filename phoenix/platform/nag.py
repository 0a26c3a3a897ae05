"""cdk-nag acknowledgments: how a finding's id names an ARN, and the one shape of the
wildcard acknowledgment every component uses."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Token, Validations
from constructs import IConstruct


def nag_arn(
    stack: Stack,
    service: str,
    resource: str,
    *,
    with_account: bool = True,
    region: str | None = None,
    account: str | None = None,
) -> str:
    """`arn:<partition>:<service>:<region>:<account>:<resource>`, with the stack's
    partition, region and account, or their pseudo-parameter names where they are not
    known at synthesis (as cdk-nag shows unresolved tokens). The partition is known when
    the region is and the `@aws-cdk/core:enablePartitionLiterals` flag is on. `region`:
    another region, named as cdk-nag names it (as it is written); `account`: another
    account."""
    partition = "<AWS::Partition>" if Token.is_unresolved(stack.partition) else stack.partition
    if region is None or region == stack.region:
        region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
    if account is None:
        account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    return f"arn:{partition}:{service}:{region}:{account if with_account else ''}:{resource}"


def acknowledge_wildcard(scope: IConstruct, resource: str, reason: str) -> None:
    """Acknowledge cdk-nag's AwsSolutions-IAM5 (wildcard permission) for `resource` (as
    the finding names it: `*`, a nag_arn, `<Logical.Arn>:*`) on `scope` alone."""
    Validations.of(scope).acknowledge(
        Acknowledgment(id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason=reason)
    )
