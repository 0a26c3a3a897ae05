"""cdk-nag acknowledgments: how a finding's id names an ARN, and the one shape of the
wildcard acknowledgment every component uses. checkov skips: the one way a component
says, on one resource, why a checkov check does not apply there (docs/scanners.md)."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Stack, Token, Validations
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


def skip_checkov(scope: IConstruct, check: str, reason: str) -> None:
    """Skip checkov's `check` (`CKV_AWS_<n>`) on `scope`'s CloudFormation resource (`scope`
    itself, or its default child) alone, in the resource's `checkov` metadata, with
    `reason`: why the check does not apply to that resource. A reason is required. The
    same check skipped again on the resource for another reason keeps both reasons."""
    if not reason.strip():
        raise ValueError(f"checkov {check} skipped on {scope.node.path} without a reason")
    resource = scope if isinstance(scope, CfnResource) else scope.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"checkov {check}: {scope.node.path} is no CloudFormation resource")
    metadata = resource.get_metadata("checkov") or {}
    skips: list[dict[str, str]] = [dict(skip) for skip in metadata.get("skip", [])]
    for skip in skips:
        if skip["id"] == check:
            if reason not in skip["comment"]:
                skip["comment"] = f"{skip['comment']} Also: {reason}"
            break
    else:
        skips.append({"id": check, "comment": reason})
    resource.add_metadata("checkov", {"skip": skips})


# CDK's own provider functions, made once at the top of a stack: the singleton function
# of every AwsCustomResource, and the provider that strips the rules of a VPC's default
# security group (`restrict_default_security_group`).
AWS_CUSTOM_RESOURCE = "AWS679f53fac002430cb0da5b7982bd2287"
VPC_DEFAULT_SECURITY_GROUP = "Custom::VpcRestrictDefaultSGCustomResourceProvider"


def skip_cdk_provider(stack: Stack, id: str, what: str) -> None:
    """Skip checkov's Lambda checks that do not apply to one of CDK's own provider
    functions (`id`, at the top of `stack`; nothing when the stack has none): concurrency,
    dead-letter queue and VPC. `what`: what the function is and which API it calls."""
    provider = stack.node.try_find_child(id)
    if provider is None:
        return
    functions = [
        node
        for node in provider.node.find_all()
        if isinstance(node, CfnResource) and node.cfn_resource_type == "AWS::Lambda::Function"
    ]
    for function in functions:
        for check, why in (
            (
                "CKV_AWS_115",
                "It runs only while CloudFormation deploys the stack, once per change of a "
                "custom resource: no concurrency to reserve.",
            ),
            (
                "CKV_AWS_116",
                "No dead-letter queue: CloudFormation waits for its answer, and a failure "
                "(the handler answers FAILED, or CloudFormation times out) fails the stack "
                "operation, where it is seen.",
            ),
            ("CKV_AWS_117", "It reaches nothing inside a VPC."),
        ):
            skip_checkov(function, check, f"{what} {why}")
