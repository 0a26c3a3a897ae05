"""The embedded AWS's IAM evaluator against the IAM User Guide's own rules and examples
("Policy evaluation logic", "IAM JSON policy elements: Condition operators",
"Single-valued vs. multivalued context keys")."""

from __future__ import annotations

from typing import Any

import pytest

from local.iam_policy import Decision, Request, UnsupportedPolicyError, evaluate

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/Books"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_no_statement_that_allows_is_an_implicit_deny() -> None:
    request = Request("dynamodb:GetItem", TABLE)
    assert evaluate([], request) is Decision.IMPLICIT_DENY
    assert evaluate([policy(allow("dynamodb:PutItem", TABLE))], request) is Decision.IMPLICIT_DENY


def test_an_explicit_deny_overrides_any_allow() -> None:
    deny = {"Effect": "Deny", "Action": "dynamodb:*", "Resource": TABLE}
    request = Request("dynamodb:GetItem", TABLE)
    assert evaluate([policy(allow("dynamodb:GetItem", TABLE)), policy(deny)], request) is (
        Decision.EXPLICIT_DENY
    )


def test_actions_match_case_insensitively_with_wildcards() -> None:
    document = policy(allow("EC2:describe*"))
    assert evaluate([document], Request("ec2:DescribeInstances", "*")) is Decision.ALLOWED
    assert evaluate([document], Request("ec2:RunInstances", "*")) is Decision.IMPLICIT_DENY
    assert evaluate([policy(allow("ec2:Describe?mages"))], Request("ec2:DescribeImages", "*")) is (
        Decision.ALLOWED
    )


def test_not_action_allows_everything_else() -> None:
    document = policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert evaluate([document], Request("ec2:RunInstances", "*")) is Decision.ALLOWED
    assert evaluate([document], Request("iam:PassRole", "*")) is Decision.IMPLICIT_DENY


def test_resource_wildcards_stay_within_one_arn_segment() -> None:
    document = policy(allow("dynamodb:GetItem", "arn:aws:dynamodb:*:123456789012:table/*"))
    assert evaluate([document], Request("dynamodb:GetItem", TABLE)) is Decision.ALLOWED
    other_account = TABLE.replace("123456789012", "210987654321")
    assert evaluate([document], Request("dynamodb:GetItem", other_account)) is (
        Decision.IMPLICIT_DENY
    )
    # an action without resource-level permissions is authorized on "*" only
    scoped = policy(allow("ec2:DescribeImages", "arn:aws:ec2:us-east-1::image/*"))
    assert evaluate([scoped], Request("ec2:DescribeImages", "*")) is Decision.IMPLICIT_DENY


def test_conditions_and_across_keys_or_across_values() -> None:
    document = policy(
        allow(
            "autoscaling:UpdateAutoScalingGroup",
            Condition={
                "StringEquals": {
                    "aws:ResourceTag/team": ["web", "api"],
                    "aws:ResourceTag/env": "prod",
                }
            },
        )
    )

    def tagged(**tags: str) -> Request:
        return Request(
            "autoscaling:UpdateAutoScalingGroup",
            "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x:autoScalingGroupName/g",
            {f"aws:ResourceTag/{k}": [v] for k, v in tags.items()},
        )

    assert evaluate([document], tagged(team="api", env="prod")) is Decision.ALLOWED
    assert evaluate([document], tagged(team="db", env="prod")) is Decision.IMPLICIT_DENY
    assert evaluate([document], tagged(team="web")) is Decision.IMPLICIT_DENY


def test_condition_key_names_are_case_insensitive_values_are_not() -> None:
    document = policy(
        allow("ec2:CreateTags", Condition={"StringEquals": {"EC2:CreateAction": "RunInstances"}})
    )
    assert evaluate(
        [document], Request("ec2:CreateTags", "*", {"ec2:createaction": ["RunInstances"]})
    ) is (Decision.ALLOWED)
    assert evaluate(
        [document], Request("ec2:CreateTags", "*", {"ec2:CreateAction": ["runinstances"]})
    ) is (Decision.IMPLICIT_DENY)


@pytest.mark.parametrize(
    ("operator", "decision"),
    [
        # "If the key ... is not present in the request context, the values do not match"
        ("StringEquals", Decision.IMPLICIT_DENY),
        ("StringLike", Decision.IMPLICIT_DENY),
        ("ArnLike", Decision.IMPLICIT_DENY),
        # "... requires that the key is not matched, such as StringNotLike or ArnNotLike,
        # and the right key is not present, the condition is true"
        ("StringNotEquals", Decision.ALLOWED),
        ("ArnNotLike", Decision.ALLOWED),
        # "...IfExists": true when the key is absent
        ("StringEqualsIfExists", Decision.ALLOWED),
        # set operators: ForAllValues is true, ForAnyValue false, with no values
        ("ForAllValues:StringEquals", Decision.ALLOWED),
        ("ForAnyValue:StringEquals", Decision.IMPLICIT_DENY),
    ],
)
def test_a_missing_condition_key(operator: str, decision: Decision) -> None:
    document = policy(
        allow("ec2:RunInstances", Condition={operator: {"ec2:LaunchTemplate": "arn:*"}})
    )
    assert evaluate([document], Request("ec2:RunInstances", "*")) is decision


def test_null_tests_whether_a_key_is_present() -> None:
    document = policy(
        allow("ec2:RunInstances", Condition={"Null": {"ec2:LaunchTemplate": "false"}})
    )
    present = Request(
        "ec2:RunInstances", "*", {"ec2:LaunchTemplate": ["arn:aws:ec2:r:a:launch-template/lt-1"]}
    )
    assert evaluate([document], present) is Decision.ALLOWED
    assert evaluate([document], Request("ec2:RunInstances", "*")) is Decision.IMPLICIT_DENY


def test_for_all_values_needs_every_request_value_in_the_set() -> None:
    document = policy(
        allow(
            "ec2:CreateTags", Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}
        )
    )
    assert (
        evaluate([document], Request("ec2:CreateTags", "*", {"aws:TagKeys": ["a"]}))
        is Decision.ALLOWED
    )
    assert evaluate([document], Request("ec2:CreateTags", "*", {"aws:TagKeys": ["a", "c"]})) is (
        Decision.IMPLICIT_DENY
    )


def test_arn_like_matches_each_segment_on_its_own() -> None:
    template = "arn:aws:ec2:us-east-1:123456789012:launch-template/lt-0abc"
    document = policy(
        allow(
            "ec2:RunInstances",
            Condition={
                "ArnLike": {"ec2:LaunchTemplate": "arn:aws:ec2:*:*:launch-template/lt-0abc"}
            },
        )
    )
    assert evaluate(
        [document], Request("ec2:RunInstances", "*", {"ec2:LaunchTemplate": [template]})
    ) is (Decision.ALLOWED)
    other = template.replace("lt-0abc", "lt-0def")
    assert evaluate(
        [document], Request("ec2:RunInstances", "*", {"ec2:LaunchTemplate": [other]})
    ) is (Decision.IMPLICIT_DENY)


def test_what_it_cannot_evaluate_is_an_error_not_a_guess() -> None:
    numeric = policy(
        allow("ec2:RunInstances", Condition={"NumericLessThan": {"ec2:VolumeSize": "100"}})
    )
    with pytest.raises(UnsupportedPolicyError):
        evaluate([numeric], Request("ec2:RunInstances", "*", {"ec2:VolumeSize": ["8"]}))
    variable = policy(allow("s3:GetObject", "arn:aws:s3:::bucket/${aws:username}/*"))
    with pytest.raises(UnsupportedPolicyError):
        evaluate([variable], Request("s3:GetObject", "arn:aws:s3:::bucket/me/key"))


# --- the IAM User Guide's worked examples --------------------------------------------------

# "Policy evaluation for requests within a single account", example identity-based policy
# evaluation: the policy attached to the user carlossalazar.
CARLOS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "AllowS3ListRead",
            "Effect": "Allow",
            "Action": [
                "s3:GetBucketLocation",
                "s3:GetAccountPublicAccessBlock",
                "s3:ListAccessPoints",
                "s3:ListAllMyBuckets",
            ],
            "Resource": "arn:aws:s3:::*",
        },
        {
            "Sid": "AllowS3Self",
            "Effect": "Allow",
            "Action": "s3:*",
            "Resource": [
                "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar/*",
                "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar",
            ],
        },
        {"Sid": "DenyS3Logs", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::*log*"},
    ],
}


@pytest.mark.parametrize(
    ("action", "resource", "decision"),
    [
        # the guide's request: saving a file to the -logs bucket is denied by DenyS3Logs
        (
            "s3:PutObject",
            "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar-logs/file.txt",
            Decision.EXPLICIT_DENY,
        ),
        # AllowS3Self: full access to the bucket named after him
        (
            "s3:PutObject",
            "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar/file.txt",
            Decision.ALLOWED,
        ),
        # AllowS3ListRead: the location of any bucket
        ("s3:GetBucketLocation", "arn:aws:s3:::amzn-s3-demo-bucket", Decision.ALLOWED),
        # nothing allows another bucket's objects
        ("s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/file.txt", Decision.IMPLICIT_DENY),
    ],
)
def test_the_guide_s_single_account_example(action: str, resource: str, decision: Decision) -> None:
    assert evaluate([CARLOS], Request(action, resource)) is decision


# "The difference between explicit and implicit denies": Get and List allowed, every
# action ending in Report explicitly denied, even where another policy allows it.
GET_LIST = policy(
    {
        "Sid": "AllowGetList",
        "Effect": "Allow",
        "Action": ["iam:Get*", "iam:List*"],
        "Resource": "*",
    },
    {"Sid": "DenyReports", "Effect": "Deny", "Action": "iam:*Report", "Resource": "*"},
)
ROLE = "arn:aws:iam::123456789012:role/example"


def test_the_guide_s_explicit_and_implicit_deny_example() -> None:
    assert evaluate([GET_LIST], Request("iam:GetRole", ROLE)) is Decision.ALLOWED
    assert evaluate([GET_LIST], Request("iam:CreatePolicy", "*")) is Decision.IMPLICIT_DENY
    report = Request("iam:GetOrganizationsAccessReport", "*")
    assert evaluate([GET_LIST], report) is Decision.EXPLICIT_DENY
    # "If someone adds another policy to this principal to grant them access to IAM
    # reports, such as iam:GenerateCredentialReport, report-related requests are still
    # denied because of this explicit deny"
    generate = Request("iam:GenerateCredentialReport", "*")
    granted = policy(allow("iam:GenerateCredentialReport"))
    assert evaluate([granted], generate) is Decision.ALLOWED
    assert evaluate([GET_LIST, granted], generate) is Decision.EXPLICIT_DENY
