"""The release controller's grants on every fleet of an environment.

Scoped by the fleets' tag (`phoenix:fleet` = `<env>/<fleet>`, on every fleet resource) and
by the names phoenix gives (groups `phoenix-<env>-...`, controller parameters under
`/phoenix/<env>/`) rather than by each fleet's ARNs, so a role's policy is the same size
for one fleet or five hundred (IAM allows 10,240 characters of inline policy per role).
`ImmutableFleet.grant_release` scopes the same calls to one fleet, for a role of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aws_cdk import ArnFormat, Stack, Token
from aws_cdk import aws_iam as iam
from constructs import Construct

from phoenix.fleet.immutable_fleet import AUTO_SCALING_WRITES, FLEET_TAG, READS, RELEASE_ACTIONS
from phoenix.kernel.names import fleet_prefix
from phoenix.platform.nag import acknowledge_wildcard, nag_arn
from phoenix.platform.roles import parameter_arn

# Resources RunInstances authorizes besides the launch template (Service Authorization
# Reference, Amazon EC2, RunInstances); the images have no account in their ARN.
LAUNCHED = ("instance", "volume", "network-interface", "security-group", "subnet")


def fleet_tagged(environment: str) -> dict[str, Any]:
    """The condition: a resource of one of the environment's fleets, by its tag."""
    return {"StringLike": {f"aws:ResourceTag/{FLEET_TAG}": f"{environment}/*"}}


def grant_environment_fleets(
    grantee: iam.IGrantable, scope: Construct, environment: str, actions: Iterable[str]
) -> None:
    """Grant `actions` (calls the release controller makes) on every fleet of
    `environment` to `grantee`; `scope` is where the wildcard findings are acknowledged."""
    wanted = set(actions)
    unknown = wanted - set(RELEASE_ACTIONS)
    if unknown:
        raise ValueError(f"grant_environment_fleets: no scoping known for {sorted(unknown)}")
    stack = Stack.of(scope)
    tagged = fleet_tagged(environment)
    templates = stack.format_arn(service="ec2", resource="launch-template", resource_name="*")
    groups = stack.format_arn(
        service="autoscaling",
        resource="autoScalingGroup",
        resource_name=f"*:autoScalingGroupName/phoenix-{environment}-*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    parameters = parameter_arn(scope, fleet_prefix(environment, "*"))
    launched = [
        stack.format_arn(service="ec2", resource=kind, resource_name="*") for kind in LAUNCHED
    ]
    launched.append(
        stack.format_arn(service="ec2", account="", resource="image", resource_name="*")
    )
    scopes: list[tuple[list[str], list[str], dict[str, Any] | None]] = [
        (AUTO_SCALING_WRITES, [groups], tagged),
        (["ec2:CreateLaunchTemplateVersion", "ec2:RunInstances"], [templates], tagged),
        # the rest of a launch: only from a launch template (which the line above limits
        # to the environment's fleets' templates)
        (["ec2:RunInstances"], launched, {"ArnLike": {"ec2:LaunchTemplate": templates}}),
        (
            ["iam:PassRole"],
            [stack.format_arn(service="iam", region="", resource="role", resource_name="*")],
            {**tagged, "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        ),
        (
            ["ec2:CreateTags"],
            [
                stack.format_arn(service="ec2", resource=kind, resource_name="*")
                for kind in LAUNCHED[:2]
            ],
            {"StringEquals": {"ec2:CreateAction": "RunInstances"}},
        ),
        (["elasticloadbalancing:ModifyListener"], [listeners(stack)], tagged),
        (["ssm:GetParameters", "ssm:PutParameter"], [parameters], None),
        (READS, ["*"], None),
    ]
    for scope_actions, resources, conditions in scopes:
        if wanted & set(scope_actions):
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=sorted(wanted & set(scope_actions)),
                resource_arns=resources,
                conditions=conditions,
            )
    _acknowledge(scope, stack, environment, wanted)


def listeners(stack: Stack) -> str:
    """Every application load balancer listener of the stack's account and region."""
    return stack.format_arn(
        service="elasticloadbalancing", resource="listener", resource_name="app/*"
    )


def _acknowledge(scope: Construct, stack: Stack, environment: str, wanted: set[str]) -> None:
    group_names = f"autoScalingGroup:*:autoScalingGroupName/phoenix-{environment}-*"
    reasons = {
        "*": (
            set(READS),
            "Read-only calls that support no resource-level permissions.",
        ),
        nag_arn(stack, "autoscaling", group_names): (
            set(AUTO_SCALING_WRITES),
            "The environment's groups, by name, and only those tagged as its fleets'.",
        ),
        nag_arn(stack, "ec2", "launch-template/*"): (
            {"ec2:CreateLaunchTemplateVersion", "ec2:RunInstances"},
            "Launch templates tagged as the environment's fleets' only.",
        ),
        _global(stack, "role/*"): (
            {"iam:PassRole"},
            "Roles tagged as the environment's fleets', passed to EC2 only.",
        ),
        nag_arn(stack, "elasticloadbalancing", "listener/app/*"): (
            {"elasticloadbalancing:ModifyListener"},
            "Listeners tagged as the environment's fleets' only.",
        ),
        nag_arn(stack, "ssm", f"parameter{fleet_prefix(environment, '*')}"): (
            {"ssm:GetParameters", "ssm:PutParameter"},
            "The controller-owned parameters of the environment's fleets.",
        ),
    }
    for kind in LAUNCHED:
        reasons[nag_arn(stack, "ec2", f"{kind}/*")] = (
            {"ec2:RunInstances", "ec2:CreateTags"},
            "What Auto Scaling launches from a fleet's launch template has no ID before "
            "RunInstances; allowed only with a launch template (or, for tags, on launch).",
        )
    reasons[nag_arn(stack, "ec2", "image/*", with_account=False)] = (
        {"ec2:RunInstances"},
        "Any AMI a release names, launched only from the fleets' launch templates.",
    )
    for resource, (actions, reason) in reasons.items():
        if wanted & actions:
            acknowledge_wildcard(scope, resource, reason)


def _global(stack: Stack, resource: str) -> str:
    """An IAM resource as cdk-nag names it: no region in the ARN."""
    region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
    return nag_arn(stack, "iam", resource).replace(f":iam:{region}:", ":iam::", 1)
