"""How cdk-nag writes an ARN in a finding's id, for acknowledgments that name one."""

from __future__ import annotations

from aws_cdk import Stack, Token


def nag_arn(stack: Stack, service: str, resource: str, *, with_account: bool = True) -> str:
    """`arn:<AWS::Partition>:<service>:<region>:<account>:<resource>`, with the stack's
    region and account, or their pseudo-parameter names when the stack is
    environment-agnostic (as cdk-nag shows unresolved tokens)."""
    region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    return f"arn:<AWS::Partition>:{service}:{region}:{account if with_account else ''}:{resource}"
