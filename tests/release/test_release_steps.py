"""Prepare and deploy: the launch template version, the instance refresh and its wait,
and the idle slot scaled up (Stubber)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from phoenix.release.handlers.deploy import handle as deploy
from phoenix.release.handlers.prepare import handle as prepare
from phoenix.release.runtime.models import FleetSpec, MalformedStepError
from phoenix.release.runtime.strategy import refresh_preferences
from tests.conftest import SynthesizedApp
from tests.release.registry import registered_spec
from tests.release.release_state import (
    ALARMS,
    AMI,
    CAPACITY,
    GROUPS,
    LISTENER,
    RELEASE_ID,
    SETTINGS,
    SOURCE_VERSION,
    STARTED_AT,
    TARGET_GROUPS,
    TEMPLATES,
    TOKEN,
    VERSION,
    StubbedAws,
    conditional_check_failed,
    expect_put_parameter,
    expect_step,
    expect_token_stored,
    parameter,
    plan,
    release_state,
    step_input,
)


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


# --- prepare ------------------------------------------------------------------------------


@pytest.mark.parametrize(("strategy", "slot"), [("canary", "green"), ("rolling", "blue")])
def test_prepare_copies_the_target_slots_version_with_only_the_new_ami(
    aws: StubbedAws, strategy: str, slot: str
) -> None:
    # Given a plan targeting `slot`, at launch template version 7
    aws.ec2.add_response(
        "create_launch_template_version",
        {"LaunchTemplateVersion": {"LaunchTemplateId": TEMPLATES[slot], "VersionNumber": 8}},
        {
            "LaunchTemplateId": TEMPLATES[slot],
            "SourceVersion": str(SOURCE_VERSION),
            "VersionDescription": f"phoenix release {RELEASE_ID}",
            "LaunchTemplateData": {"ImageId": AMI},
        },
    )
    expect_step(
        aws, "launch template version created", slot=slot, version=8, source_version=SOURCE_VERSION
    )

    # When prepare runs, Then the new version is returned for the state machine
    result = prepare(step_input(release_state(strategy, prepared=False)), SETTINGS, aws.clients)
    assert result == {"version": 8}


def test_prepare_without_a_plan_is_refused_before_any_call(aws: StubbedAws) -> None:
    with pytest.raises(MalformedStepError, match="no plan"):
        prepare(step_input(release_state(planned=False, prepared=False)), SETTINGS, aws.clients)
    assert aws.calls == []


# --- deploy: the instance refresh ----------------------------------------------------------


def test_refresh_stores_the_token_then_starts_the_refresh(aws: StubbedAws) -> None:
    # Given a rolling release, prepared at version 8, waiting with a task token
    expect_token_stored(aws)
    aws.autoscaling.add_response(
        "start_instance_refresh",
        {"InstanceRefreshId": "r-0099"},
        {
            "AutoScalingGroupName": GROUPS["blue"],
            "Strategy": "Rolling",
            "DesiredConfiguration": {
                "LaunchTemplate": {"LaunchTemplateId": TEMPLATES["blue"], "Version": "8"}
            },
            "Preferences": {
                "MinHealthyPercentage": 100,
                "MaxHealthyPercentage": 200,
                "InstanceWarmup": 60,
                "SkipMatching": True,
                "AutoRollback": True,
                "BakeTime": 600,
                "ScaleInProtectedInstances": "Refresh",
                "StandbyInstances": "Terminate",
                "CheckpointPercentages": [50, 100],
                "CheckpointDelay": 300,
                "AlarmSpecification": {"Alarms": ALARMS},
            },
        },
    )
    expect_step(aws, "instance refresh started", refresh_id="r-0099")

    # When deploy `refresh` runs
    result = deploy(step_input(release_state("rolling"), "refresh", TOKEN), SETTINGS, aws.clients)

    # Then the token is stored first: the refresh's end event can never come before it
    assert result is None
    assert aws.calls[:2] == ["dynamodb.UpdateItem", "autoscaling.StartInstanceRefresh"]


def test_refresh_by_a_release_that_lost_its_lock_starts_nothing(aws: StubbedAws) -> None:
    # Given the lock is no longer this release's: the conditional token write is refused
    conditional_check_failed(aws.dynamodb)
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        deploy(step_input(release_state("rolling"), "refresh", TOKEN), SETTINGS, aws.clients)
    assert aws.calls == ["dynamodb.UpdateItem"]


def test_production_workers_refresh_pauses_at_its_checkpoints_and_replaces_every_instance(
    synthesized: SynthesizedApp,
) -> None:
    # Given production's worker (checkpoints [20, 50, 100] in config/production.yaml) as
    # the registry hands it to the steps, its resources as CloudFormation resolves them
    written = registered_spec(synthesized.template("phoenix-production"), "production", "worker")
    resolved = {"group": GROUPS["blue"], "target_group": TARGET_GROUPS["blue"]}
    spec = FleetSpec.model_validate(
        written
        | {"listener": LISTENER, "alarms": ALARMS}
        | {"slots": {"blue": resolved | {"launch_template": TEMPLATES["blue"]}}}
    )

    # When deploy `refresh` makes its StartInstanceRefresh preferences
    preferences = refresh_preferences(spec)

    # Then the last checkpoint is 100: AWS replaces only up to the last one (API reference,
    # RefreshPreferences: to replace all instances, the last number must be 100)
    assert preferences.get("CheckpointPercentages") == [20, 50, 100]
    assert preferences.get("CheckpointDelay") == 600

    # And a refresh back to the last good version (a rollback release) is a fast track:
    # no checkpoint, no bake, and not the alarms that are in ALARM on what it replaces
    back = refresh_preferences(spec, back=True)
    assert "CheckpointPercentages" not in back
    assert "CheckpointDelay" not in back
    assert "AlarmSpecification" not in back
    assert back.get("BakeTime") == 0
    assert preferences.get("AlarmSpecification") == {"Alarms": ALARMS}


def test_await_only_stores_the_new_token(aws: StubbedAws) -> None:
    expect_token_stored(aws)
    result = deploy(step_input(release_state("rolling"), "await", TOKEN), SETTINGS, aws.clients)
    assert result is None
    assert aws.calls == ["dynamodb.UpdateItem"]


@pytest.mark.parametrize("action", ["refresh", "await"])
def test_a_wait_without_a_task_token_is_refused_before_any_call(
    aws: StubbedAws, action: str
) -> None:
    with pytest.raises(MalformedStepError, match=f"action {action} needs a task token"):
        deploy(step_input(release_state("rolling"), action), SETTINGS, aws.clients)
    assert aws.calls == []


def test_an_unknown_action_is_refused_before_any_call(aws: StubbedAws) -> None:
    with pytest.raises(MalformedStepError, match="unknown action 'deploy'"):
        deploy(step_input(release_state("rolling"), "deploy"), SETTINGS, aws.clients)
    assert aws.calls == []


def _refreshes(aws: StubbedAws, *found: dict[str, Any]) -> None:
    aws.autoscaling.add_response(
        "describe_instance_refreshes",
        {"InstanceRefreshes": list(found)},
        {"AutoScalingGroupName": GROUPS["blue"], "MaxRecords": 1},
    )


# (the outcome of the previous poll, if any) -> polls left after this one
POLLS: list[tuple[dict[str, Any] | None, int]] = [
    (None, 2),
    ({"status": "InProgress", "polls_left": 2}, 1),
    ({"status": "InProgress", "polls_left": 1}, 0),
    ({"status": "InProgress", "polls_left": 0}, 0),
]


@pytest.mark.parametrize(("previous", "left"), POLLS)
def test_each_poll_reports_the_status_and_counts_down(
    aws: StubbedAws, previous: dict[str, Any] | None, left: int
) -> None:
    # Given this release's refresh (started since the release, to its version) in progress
    _refreshes(
        aws,
        {
            "InstanceRefreshId": "r-0099",
            "Status": "InProgress",
            "StatusReason": "50%",
            "StartTime": STARTED_AT + timedelta(minutes=5),
            "DesiredConfiguration": {
                "LaunchTemplate": {"LaunchTemplateId": TEMPLATES["blue"], "Version": str(VERSION)}
            },
        },
    )
    state = release_state("rolling")
    if previous is not None:
        state["refresh"] = previous

    # When deploy `poll` runs (no event came in time)
    result = deploy(step_input(state, "poll"), SETTINGS, aws.clients)

    # Then the status is read, nothing is written, and one poll fewer is left
    assert result == {"status": "InProgress", "reason": "50%", "polls_left": left}
    assert aws.calls == ["autoscaling.DescribeInstanceRefreshes"]


def test_a_poll_of_a_group_without_refreshes_says_none(aws: StubbedAws) -> None:
    _refreshes(aws)
    result = deploy(step_input(release_state("rolling"), "poll"), SETTINGS, aws.clients)
    assert result == {"status": "None", "reason": "", "polls_left": 2}


# --- deploy: the idle slot ------------------------------------------------------------------


def _expect_parameters_then_scaled(aws: StubbedAws, *, emptied_first: bool) -> None:
    """green's version and minimum, (its warm instances emptied,) then green scaled up."""
    expect_put_parameter(aws, parameter("green", "launch-template-version"), str(VERSION))
    expect_put_parameter(aws, parameter("green", "min-size"), "2")
    if emptied_first:
        aws.autoscaling.add_response(
            "update_auto_scaling_group",
            {},
            {"AutoScalingGroupName": GROUPS["green"], "MinSize": 0, "DesiredCapacity": 0},
        )
    aws.autoscaling.add_response(
        "update_auto_scaling_group",
        {},
        {
            "AutoScalingGroupName": GROUPS["green"],
            "LaunchTemplate": {"LaunchTemplateId": TEMPLATES["green"], "Version": "8"},
            "MinSize": 2,
            "MaxSize": 6,
            "DesiredCapacity": 3,
        },
    )
    expect_step(aws, "target slot scaled", slot="green", version=VERSION, desired=3)


@pytest.mark.parametrize("strategy", ["blue_green", "canary"])
def test_scale_writes_the_controller_parameters_then_scales_the_idle_slot(
    aws: StubbedAws, strategy: str
) -> None:
    # Given green idle (no instance), blue serving with capacity 2/6/3
    _expect_parameters_then_scaled(aws, emptied_first=False)

    # When deploy `scale` runs
    result = deploy(step_input(release_state(strategy), "scale"), SETTINGS, aws.clients)

    # Then the parameters come first, so a deploy meanwhile keeps the new version and
    # minimum; an idle slot has nothing to empty: one group update
    assert result == {"desired": CAPACITY["desired"]}
    assert aws.calls[:3] == [
        "ssm.PutParameter",
        "ssm.PutParameter",
        "autoscaling.UpdateAutoScalingGroup",
    ]
    assert aws.calls.count("autoscaling.UpdateAutoScalingGroup") == 1


@pytest.mark.parametrize("strategy", ["blue_green", "canary"])
def test_scale_empties_a_slot_still_warm_before_scaling_it_up_on_the_new_version(
    aws: StubbedAws, strategy: str
) -> None:
    # Given green still runs 3 instances of the release before last (its rollback window)
    _expect_parameters_then_scaled(aws, emptied_first=True)
    state = release_state(strategy, plan=plan(strategy, target_running=3))

    # When deploy `scale` runs
    result = deploy(step_input(state, "scale"), SETTINGS, aws.clients)

    # Then green goes to 0 first: none of its old instances can pass for the new ones
    assert result == {"desired": CAPACITY["desired"]}
    assert aws.calls[:4] == [
        "ssm.PutParameter",
        "ssm.PutParameter",
        "autoscaling.UpdateAutoScalingGroup",
        "autoscaling.UpdateAutoScalingGroup",
    ]


def test_scale_without_a_prepared_version_is_refused_before_any_call(aws: StubbedAws) -> None:
    with pytest.raises(MalformedStepError, match="no prepared launch template version"):
        deploy(step_input(release_state(prepared=False), "scale"), SETTINGS, aws.clients)
    assert aws.calls == []


def test_refresh_without_a_prepared_version_stores_no_token(aws: StubbedAws) -> None:
    # A token stored for a refresh that never starts would be completed by nothing
    state = release_state("rolling", prepared=False)
    with pytest.raises(MalformedStepError, match="no prepared launch template version"):
        deploy(step_input(state, "refresh", TOKEN), SETTINGS, aws.clients)
    assert aws.calls == []
