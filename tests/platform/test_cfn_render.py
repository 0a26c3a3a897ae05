"""The IAM oracle's footing (tests/cfn_render.py, tests/iam_reference.py): CloudFormation
intrinsics rendered to ARNs, and policy ARNs matched against the reference's formats."""

from __future__ import annotations

import pytest

from tests.cfn_render import TemplateRenderer, UnrenderableError
from tests.iam_reference import arn_may_match
from tests.platform.test_iam_reference import LAUNCH_TEMPLATE_ARN, TEMPLATE

# ---------------------------------------------------------------------------------------------
# Rendering and matching, which the checks rest on


def test_intrinsics_render_to_arns_of_the_resources_they_name() -> None:
    render = TemplateRenderer(TEMPLATE, region="eu-west-1", account="111122223333").strings
    assert render(LAUNCH_TEMPLATE_ARN) == [
        "arn:aws:ec2:eu-west-1:111122223333:launch-template/Template"
    ]
    assert render({"Fn::GetAtt": ["Logs", "Arn"]}) == [
        "arn:aws:logs:eu-west-1:111122223333:log-group:Logs:*"
    ]
    assert render({"Fn::Sub": "${Function.Arn}:*"}) == [
        "arn:aws:lambda:eu-west-1:111122223333:function:Function:*"
    ]
    assert render({"Ref": "Listener"}) == [
        "arn:aws:elasticloadbalancing:eu-west-1:111122223333:listener/net/Listener/Listener/Listener"
    ]
    assert render(
        {
            "Fn::Select": [
                1,
                {
                    "Fn::Split": [
                        "/",
                        {"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket", "Arn"]}, "/a/b"]]},
                    ]
                },
            ]
        }
    ) == ["a"]
    assert render({"Fn::Sub": ["arn:${AWS::Partition}:s3:::${B}/*", {"B": {"Ref": "Bucket"}}]}) == [
        "arn:aws:s3:::Bucket/*"
    ]
    assert render([{"Ref": "AWS::NoValue"}, "*"]) == ["*"]
    with pytest.raises(UnrenderableError):
        render({"Fn::If": ["Condition", "a", "b"]})


@pytest.mark.parametrize(
    ("policy_arn", "arn_format", "matches"),
    [
        (
            "arn:aws:ssm:us-east-1:1:parameter/a/b",
            "arn:${Partition}:ssm:${Region}:${Account}:parameter/${Name}",
            True,
        ),
        (
            "arn:aws:ssm:us-east-1::parameter/aws/service/x",
            "arn:${Partition}:ssm:${Region}:${Account}:parameter/${Name}",
            True,
        ),
        (
            "arn:aws:ssm:us-east-1:1:parameter/a",
            "arn:${Partition}:ec2:${Region}:${Account}:launch-template/${Id}",
            False,
        ),
        (
            "arn:aws:ec2:*:*:launch-template/*",
            "arn:${Partition}:ec2:${Region}:${Account}:launch-template/${Id}",
            True,
        ),
        (
            "arn:aws:ec2:us-east-1::image/*",
            "arn:${Partition}:ec2:${Region}::image/${ImageId}",
            True,
        ),
        ("*", "arn:${Partition}:ec2:${Region}::image/${ImageId}", True),
        (
            "arn:aws:lambda:r:1:function:f:*",
            "arn:${Partition}:lambda:${Region}:${Account}:function:${FunctionName}",
            False,
        ),
        (
            "arn:aws:lambda:r:1:function:f:*",
            "arn:${Partition}:lambda:${Region}:${Account}:function:${FunctionName}:${Alias}",
            True,
        ),
        (
            "arn:aws:lambda:r:1:function:f:1:2",
            "arn:${Partition}:lambda:${Region}:${Account}:function:${FunctionName}:${Alias}",
            False,
        ),
        (
            "arn:aws:s3:::bucket/*/AWSLogs/1/*",
            "arn:${Partition}:s3:::${BucketName}/${ObjectName}",
            True,
        ),
        ("arn:aws:s3:::bucket", "arn:${Partition}:s3:::${BucketName}/${ObjectName}", False),
        ("arn:aws:s3:::buck?t", "arn:${Partition}:s3:::${BucketName}", True),
        (
            "arn:aws:iam::1:role/a/b",
            "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}",
            True,
        ),
        ("arn:aws:iam::1:role/a", "arn:${Partition}:iam::${Account}:user/${UserName}", False),
    ],
)
def test_arn_matching(policy_arn: str, arn_format: str, matches: bool) -> None:
    assert arn_may_match(policy_arn, arn_format) is matches
