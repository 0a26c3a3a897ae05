"""How the embedded AWS's drift detection compares properties (local/stack_drift_compare.py),
from AWS's resource schemas: arrays in order unless the schema says otherwise at that
depth, write-only properties and dynamic references left out, and a key the reader does
not read left alone while one it read unset is removed."""

from __future__ import annotations

from typing import Any

from local import stack_drift_compare as compare

REGION = "us-east-1"
GROUP = "AWS::AutoScaling::AutoScalingGroup"


def _differences(
    type_name: str, expected: dict[str, Any], actual: dict[str, Any]
) -> list[tuple[str, str]]:
    comparison = compare.Comparison(compare.unordered(REGION, type_name))
    return [
        (d["PropertyPath"], d["DifferenceType"])
        for key, value in expected.items()
        for d in comparison.differences(f"/{key}", value, actual[key])
    ]


def test_a_nested_array_the_schema_leaves_unordered_is_a_set_and_an_ordered_one_is_not() -> None:
    # MetricsCollection/*/Metrics says "insertionOrder": false; TerminationPolicies does not
    assert "/MetricsCollection/*/Metrics" in compare.unordered(REGION, GROUP)
    metrics = {"MetricsCollection": [{"Granularity": "1Minute", "Metrics": ["A", "B"]}]}
    swapped = {"MetricsCollection": [{"Granularity": "1Minute", "Metrics": ["B", "A"]}]}
    assert _differences(GROUP, metrics, swapped) == []
    policies = {"TerminationPolicies": ["OldestInstance", "Default"]}
    reordered = {"TerminationPolicies": ["Default", "OldestInstance"]}
    assert _differences(GROUP, policies, reordered) == [
        ("/TerminationPolicies/0", "NOT_EQUAL"),
        ("/TerminationPolicies/1", "NOT_EQUAL"),
    ]


def test_write_only_properties_and_dynamic_references_are_not_expected() -> None:
    rule = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "SourceSecurityGroupName": "lb"}
    properties = {
        "GroupDescription": "{{resolve:ssm:/described}}",
        "SecurityGroupIngress": [rule],
    }
    assert compare.expected(REGION, "AWS::EC2::SecurityGroup", properties) == {
        "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80}]
    }


def test_a_key_not_read_is_not_compared_and_one_read_unset_is_removed() -> None:
    expected = {"LaunchTemplate": {"LaunchTemplateId": "lt-1", "LaunchTemplateName": "web"}}
    assert _differences(GROUP, expected, {"LaunchTemplate": {"LaunchTemplateId": "lt-1"}}) == []
    unset = {"LaunchTemplate": {"LaunchTemplateId": "lt-1", "LaunchTemplateName": None}}
    removed = ("/LaunchTemplate/LaunchTemplateName", "REMOVE")
    assert _differences(GROUP, expected, unset) == [removed]
