"""Controller-owned state: a `cdk deploy` never reverts or disturbs a release.

The values a release sets (the AMI in service, each slot's launch template version and
minimum, the listener's weights) appear in the templates only as deploy-time references
to SSM parameters; the parameters are created once and never written by a deploy.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from phoenix.config.environment import EnvironmentConfig
from tests.conftest import ChangedSandbox, SynthesizedApp
from tests.iam import actions_of, granted_actions


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in Template.from_json(template).find_resources(kind).items()
    }


def _controller_owned(template: dict[str, Any]) -> dict[str, Any]:
    """Every value in the fleet stack that a release changes, by where it sits."""
    owned: dict[str, Any] = {}
    for group in _resources(template, "AWS::AutoScaling::AutoScalingGroup").values():
        name = group["AutoScalingGroupName"]
        owned[f"{name}.MinSize"] = group["MinSize"]
        owned[f"{name}.LaunchTemplate.Version"] = group["LaunchTemplate"]["Version"]
        owned[f"{name}.DesiredCapacity"] = group.get("DesiredCapacity")
    for index, launch_template in enumerate(
        _resources(template, "AWS::EC2::LaunchTemplate").values()
    ):
        owned[f"launch-template-{index}.ImageId"] = launch_template["LaunchTemplateData"]["ImageId"]
    for listener in _resources(template, "AWS::ElasticLoadBalancingV2::Listener").values():
        for action in listener["DefaultActions"]:
            for group in action.get("ForwardConfig", {}).get("TargetGroups", []):
                owned[f"weight-of-{json.dumps(group['TargetGroupArn'])}"] = group["Weight"]
    return owned


def _weights(template: dict[str, Any]) -> list[Any]:
    return sorted(v for k, v in _controller_owned(template).items() if "weight-of" in k)


def _parse_sdk_call(value: Any) -> dict[str, Any]:
    """An AwsCustomResource call as JSON; tokens inside it become `<token>`."""
    if isinstance(value, dict):
        value = "".join(p if isinstance(p, str) else "<token>" for p in value["Fn::Join"][1])
    call: dict[str, Any] = json.loads(value)
    return call


@pytest.mark.parametrize("environment", ["sandbox", "production"])
def test_no_controller_owned_value_is_a_literal(
    synthesized: SynthesizedApp, environment: str
) -> None:
    for stack in (
        f"phoenix-{environment}",
        *(
            f"phoenix-{environment}-{dr.region}"
            for dr in synthesized.configs[environment].disaster_recovery
        ),
    ):
        owned = _controller_owned(synthesized.template(stack))
        assert owned
        for where, value in owned.items():
            if where.endswith("DesiredCapacity"):
                assert value is None, f"{stack}: CloudFormation sets {where}"
            else:
                assert isinstance(value, str), f"{stack}: {where} is {value!r}"
                assert value.startswith("{{resolve:ssm:/phoenix/"), f"{stack}: {where} is {value!r}"


def test_the_ami_is_read_at_deploy_time_never_at_launch_time(synthesized: SynthesizedApp) -> None:
    template = synthesized.template("phoenix-sandbox")
    for launch_template in _resources(template, "AWS::EC2::LaunchTemplate").values():
        image = launch_template["LaunchTemplateData"]["ImageId"]
        # `resolve:ssm:` without braces is the launch-time form that breaks rollback.
        assert image == "{{resolve:ssm:/phoenix/sandbox/web/ami}}"


def test_each_slot_reads_its_own_parameters(synthesized: SynthesizedApp) -> None:
    groups = _resources(
        synthesized.template("phoenix-sandbox"), "AWS::AutoScaling::AutoScalingGroup"
    )
    by_name = {g["AutoScalingGroupName"]: g for g in groups.values()}
    for slot in ("blue", "green"):
        group = by_name[f"phoenix-sandbox-web-{slot}"]
        assert group["MinSize"] == f"{{{{resolve:ssm:/phoenix/sandbox/web/{slot}/min-size}}}}"
        assert group["LaunchTemplate"]["Version"] == (
            f"{{{{resolve:ssm:/phoenix/sandbox/web/{slot}/launch-template-version}}}}"
        )


def test_a_later_deploy_that_changes_everything_else_carries_the_same_references(
    synthesized: SynthesizedApp, changed_sandbox: ChangedSandbox
) -> None:
    # Given the sandbox as first deployed, and as deployed again with its launch template
    # (instance type, volume), listener (HTTPS), groups (capacity) and bootstrap AMI changed
    before = synthesized.template("phoenix-sandbox")
    after = changed_sandbox.synthesized.template("phoenix-sandbox")
    assert before != after

    # Then the controller-owned values are the same references, not new literals
    owned_before = {k: v for k, v in _controller_owned(before).items() if "weight-of" not in k}
    owned_after = {k: v for k, v in _controller_owned(after).items() if "weight-of" not in k}
    assert owned_before == owned_after
    weights = lambda t: sorted(v for k, v in _controller_owned(t).items() if "weight-of" in k)  # noqa: E731
    assert (
        weights(before)
        == weights(after)
        == [
            "{{resolve:ssm:/phoenix/sandbox/web/blue/weight}}",
            "{{resolve:ssm:/phoenix/sandbox/web/green/weight}}",
        ]
    )


def test_the_parameters_are_created_once_and_never_written_by_a_deploy(
    synthesized: SynthesizedApp, changed_sandbox: ChangedSandbox
) -> None:
    for app in (synthesized, changed_sandbox.synthesized):
        calls = _resources(app.template("phoenix-sandbox-state"), "Custom::AWS")
        assert calls
        for properties in calls.values():
            assert "Update" not in properties  # an update event calls nothing
            create = _parse_sdk_call(properties["Create"])
            if create["action"] == "PutParameter":
                assert create["parameters"]["Overwrite"] is False
                assert create["ignoreErrorCodesMatching"] == "ParameterAlreadyExists"
                assert _parse_sdk_call(properties["Delete"])["action"] == "DeleteParameter"


def _initial_values(template: dict[str, Any]) -> dict[str, str]:
    values = {}
    for properties in _resources(template, "Custom::AWS").values():
        create = _parse_sdk_call(properties["Create"])
        if create["action"] == "PutParameter":
            values[create["parameters"]["Name"]] = create["parameters"]["Value"]
    return values


def test_initial_state_blue_serves_at_the_minimum_green_waits_empty(
    synthesized: SynthesizedApp, environment_configs: dict[str, EnvironmentConfig]
) -> None:
    web = environment_configs["sandbox"].fleets[0]
    assert _initial_values(synthesized.template("phoenix-sandbox-state")) == {
        "/phoenix/sandbox/web/ami": "<token>",  # read from the public AL2023 parameter
        "/phoenix/sandbox/web/blue/min-size": str(web.capacity.min),
        "/phoenix/sandbox/web/blue/launch-template-version": "1",
        "/phoenix/sandbox/web/blue/weight": "100",
        "/phoenix/sandbox/web/green/min-size": "0",
        "/phoenix/sandbox/web/green/launch-template-version": "1",
        "/phoenix/sandbox/web/green/weight": "0",
    }
    reads = [
        _parse_sdk_call(p["Create"])
        for p in _resources(synthesized.template("phoenix-sandbox-state"), "Custom::AWS").values()
    ]
    assert {"Name": web.initial_ami} in [
        c["parameters"] for c in reads if c["action"] == "GetParameter"
    ]


def test_a_rolling_fleet_has_one_slot_and_no_weights(synthesized: SynthesizedApp) -> None:
    values = _initial_values(synthesized.template("phoenix-production-state"))
    worker = {name: value for name, value in values.items() if "/worker/" in name}
    assert set(worker) == {
        "/phoenix/production/worker/ami",
        "/phoenix/production/worker/blue/min-size",
        "/phoenix/production/worker/blue/launch-template-version",
    }


def test_a_literal_bootstrap_ami_is_written_as_given(changed_sandbox: ChangedSandbox) -> None:
    values = _initial_values(changed_sandbox.synthesized.template("phoenix-sandbox-state"))
    assert values["/phoenix/sandbox/web/ami"] == "ami-0123456789abcdef0"


def test_the_fleet_stack_deploys_after_the_state_it_reads(synthesized: SynthesizedApp) -> None:
    artifacts = {a.stack_name: a for a in synthesized.stack_artifacts()}
    for stack in ("phoenix-sandbox", "phoenix-production", "phoenix-production-us-west-2"):
        dependencies = {d.id for d in artifacts[stack].dependencies}
        assert artifacts[f"{stack}-state"].id in dependencies


def test_grant_release_scopes_the_controller_to_this_fleet(changed_sandbox: ChangedSandbox) -> None:
    template = changed_sandbox.synthesized.template("phoenix-sandbox")
    policies = _resources(template, "AWS::IAM::Policy")
    (document,) = [
        p["PolicyDocument"]
        for p in policies.values()
        if "ReleaseController" in json.dumps(p["Roles"])
    ]
    by_action = {
        action: statement for statement in document["Statement"] for action in actions_of(statement)
    }
    scaling = by_action["autoscaling:UpdateAutoScalingGroup"]
    assert scaling["Condition"] == {
        "StringEquals": {"aws:ResourceTag/phoenix:fleet": "sandbox/web"}
    }
    assert by_action["autoscaling:RollbackInstanceRefresh"] is scaling
    assert by_action["elasticloadbalancing:ModifyListener"]["Resource"] == {
        "Ref": next(
            k
            for k, r in _resources(template, "AWS::ElasticLoadBalancingV2::Listener").items()
            if r["Port"] == 443
        )
    }
    parameters = json.dumps(by_action["ssm:PutParameter"]["Resource"])
    assert parameters.count(":parameter/phoenix/sandbox/web/") == 7
    assert "*" not in parameters
    assert "ec2:LaunchTemplate" in json.dumps(by_action["ec2:RunInstances"]["Condition"])
    for action, statement in by_action.items():
        if statement["Resource"] == "*" and "Condition" not in statement:
            assert action.split(":")[1].startswith(("Describe", "Get")), action
    # The fleet's groups carry the tag the condition names.
    for group in _resources(template, "AWS::AutoScaling::AutoScalingGroup").values():
        assert {"Key": "phoenix:fleet", "Value": "sandbox/web", "PropagateAtLaunch": True} in group[
            "Tags"
        ]


def test_the_parameter_writer_may_touch_only_these_parameters(synthesized: SynthesizedApp) -> None:
    template = synthesized.template("phoenix-sandbox-state")
    statements = [
        statement
        for policy in _resources(template, "AWS::IAM::Policy").values()
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    assert granted_actions(statements) == {
        "ssm:GetParameter",
        "ssm:PutParameter",
        "ssm:DeleteParameter",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    # the environment's controller parameters (one statement for any number of fleets)
    # and the public parameters that name bootstrap AMIs, nothing else
    for statement in statements:
        resource = json.dumps(statement["Resource"])
        if "ssm:PutParameter" in json.dumps(statement["Action"]):
            assert resource.endswith(':parameter/phoenix/sandbox/*"]]}'), statement
        elif "ssm:GetParameter" in json.dumps(statement["Action"]):
            assert ":parameter/aws/service/" in resource, statement
            assert "*" not in resource, statement
        else:
            assert "*" not in resource.replace("log-group", ""), statement
