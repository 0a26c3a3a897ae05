"""Preflight: the fleet's lock, then every rollback-safety check (Stubber)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from phoenix.release.runtime import preflight
from phoenix.release.runtime.models import FleetSpec, ReleaseState
from phoenix.release.runtime.preflight import PreflightFailedError
from tests.release.preflight_world import World, given, group, image, run_preflight
from tests.release.release_state import (
    ALARMS,
    AMI,
    GROUPS,
    LISTENER,
    PREVIOUS_AMI,
    TARGET_GROUPS,
    TEMPLATES,
    StubbedAws,
    fleet_spec,
    parameter,
    release_state,
)

PAST = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
FUTURE = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


# (world, the stage that fails, the check named, the resource named, what is said)
FAILURES: dict[str, tuple[World, str, str, str, str]] = {
    "missing controller parameter": (
        World(invalid=(parameter("green", "weight"),)),
        "parameters",
        "controller state",
        parameter("green", "weight"),
        "does not exist",
    ),
    "traffic split equally": (
        World(weights={"blue": "50", "green": "50"}),
        "parameters",
        "one active slot",
        f"listener {LISTENER}",
        "split 50/50",
    ),
    "target AMI not found": (
        World(images=(image(PREVIOUS_AMI),)),
        "images",
        "target AMI exists",
        AMI,
        "not found",
    ),
    "target AMI not available": (
        World(images=(image(AMI, State="pending"), image(PREVIOUS_AMI))),
        "images",
        "target AMI available",
        AMI,
        "state pending",
    ),
    "target AMI of the wrong architecture": (
        World(images=(image(AMI, Architecture="x86_64"), image(PREVIOUS_AMI))),
        "images",
        "target AMI architecture",
        AMI,
        "x86_64, but the fleet runs arm64",
    ),
    "rollback AMI deregistered": (
        World(images=(image(AMI),)),
        "images",
        "rollback AMI launchable",
        PREVIOUS_AMI,
        "deregistered",
    ),
    "rollback AMI not available": (
        World(images=(image(AMI), image(PREVIOUS_AMI, State="failed"))),
        "images",
        "rollback AMI launchable",
        PREVIOUS_AMI,
        "state failed",
    ),
    "rollback AMI deprecated": (
        World(images=(image(AMI), image(PREVIOUS_AMI, DeprecationTime=PAST))),
        "images",
        "rollback AMI launchable",
        PREVIOUS_AMI,
        f"deprecated since {PAST}",
    ),
    "a group missing": (
        World(groups=(group("blue", "6", 3),)),
        "groups",
        "group exists",
        GROUPS["green"],
        "no such Auto Scaling group",
    ),
    "a group on $Latest": (
        World(groups=(group("blue", "$Latest", 3), group("green", "7", 0))),
        "groups",
        "explicit launch template version",
        GROUPS["blue"],
        "uses version $Latest",
    ),
    "an instance refresh running": (
        World(refresh="InProgress"),
        "refreshes",
        "no instance refresh running",
        GROUPS["green"],
        "refresh r-0042 is InProgress",
    ),
    "a fleet alarm in ALARM": (
        World(firing=(ALARMS[1],)),
        "alarms",
        "fleet alarms OK",
        ALARMS[1],
        "in ALARM now",
    ),
}


@pytest.mark.parametrize("case", FAILURES, ids=list(FAILURES))
def test_each_failed_check_names_the_check_and_the_resource(aws: StubbedAws, case: str) -> None:
    # Given a canary fleet where one thing is unsafe (nothing is queued past that read)
    world, stage, check, resource, detail = FAILURES[case]
    given(aws, "canary", world, through=stage)

    # When preflight runs, Then it stops at that check, naming it and the resource
    with pytest.raises(PreflightFailedError) as raised:
        run_preflight(aws, "canary")
    assert (raised.value.check, raised.value.resource) == (check, resource)
    assert f"preflight check '{check}' failed for {resource}" in str(raised.value)
    assert detail in str(raised.value)


def test_a_rollback_ami_deprecated_only_in_the_future_is_still_launchable(aws: StubbedAws) -> None:
    given(aws, "canary", World(images=(image(AMI), image(PREVIOUS_AMI, DeprecationTime=FUTURE))))
    assert run_preflight(aws, "canary").from_ami == PREVIOUS_AMI


def test_canary_targets_the_idle_slot_with_the_canary_steps(aws: StubbedAws) -> None:
    # Given blue serving (weight 100), green idle on launch template version 7
    given(aws, "canary", World())

    plan = run_preflight(aws, "canary")

    # Then green is the target, from its own version, with blue's capacity
    assert (plan.active_slot, plan.target_slot) == ("blue", "green")
    assert (plan.active_target_group, plan.target_target_group) == (
        TARGET_GROUPS["blue"],
        TARGET_GROUPS["green"],
    )
    assert plan.from_ami == PREVIOUS_AMI
    assert plan.source_version == 7
    # and the new version will be based on the template as the last deploy made it
    assert plan.template_version == 9
    assert plan.capacity.model_dump() == {"min": 2, "max": 6, "desired": 3}
    assert plan.target_running == 0  # green is idle
    # each also in the listener's order: blue (active) first, as the template has it
    assert [s.model_dump() for s in plan.steps] == [
        {"target": 5, "active": 95, "last": False, "first": 95, "second": 5},
        {"target": 25, "active": 75, "last": False, "first": 75, "second": 25},
        {"target": 50, "active": 50, "last": False, "first": 50, "second": 50},
        {"target": 100, "active": 0, "last": True, "first": 0, "second": 100},
    ]
    assert (plan.first_target_group, plan.second_target_group) == (
        TARGET_GROUPS["blue"],
        TARGET_GROUPS["green"],
    )
    # one batch (200% max healthy): 60 s warm-up + 300 s bake, twice over, at least 600
    assert plan.refresh_wait_seconds == 720


def test_the_active_slot_follows_the_weights(aws: StubbedAws) -> None:
    # Given green serving: the release targets blue, at blue's version, green's capacity
    given(
        aws,
        "canary",
        World(
            weights={"blue": "0", "green": "100"},
            groups=(group("blue", "4", 0), group("green", "7", 3)),
            target="blue",
        ),
    )

    plan = run_preflight(aws, "canary")

    assert (plan.active_slot, plan.target_slot) == ("green", "blue")
    assert plan.source_version == 4
    assert plan.capacity.desired == 3


def test_rolling_refreshes_its_one_slot_in_one_step(aws: StubbedAws) -> None:
    # Given a rolling fleet (one slot, no weights to read)
    given(aws, "rolling", World())

    plan = run_preflight(aws, "rolling")

    assert (plan.active_slot, plan.target_slot) == ("blue", "blue")
    assert plan.source_version == 6
    # the one slot serves (3 instances): the refresh replaces them, nothing to empty
    assert plan.target_running == 0
    assert [s.model_dump() for s in plan.steps] == [
        {"target": 100, "active": 0, "last": True, "first": 100, "second": 0}
    ]
    # one batch: 60 s warm-up + one checkpoint of 300 s + 600 s bake = 960, twice over
    assert plan.refresh_wait_seconds == 1920


@pytest.mark.parametrize("strategy", ["blue_green", "canary"])
def test_a_slot_still_warm_from_the_last_release_is_a_target_with_its_instances_counted(
    aws: StubbedAws, strategy: str
) -> None:
    # Given blue serving and green, its predecessor, still at 3 instances (not retired yet)
    given(aws, strategy, World(groups=(group("blue", "6", 3), group("green", "7", 3))))

    plan = run_preflight(aws, strategy)

    # Then green is the target all the same, and the plan says it still runs 3 instances
    # (deploy `scale` empties it before it scales it up on the new version)
    assert plan.target_slot == "green"
    assert plan.target_running == 3
    assert plan.capacity.desired == 3


def test_the_refresh_wait_is_never_under_ten_minutes() -> None:
    spec = fleet_spec("rolling", checkpoint_percentages=[], bake_seconds=0)
    assert preflight.refresh_wait_seconds(FleetSpec.model_validate(spec)) == 600


def test_a_fleet_without_alarms_asks_cloudwatch_nothing(aws: StubbedAws) -> None:
    given(aws, "canary", World(), through="refreshes")
    state = release_state("canary", planned=False, prepared=False)
    state["fleet_spec"] = fleet_spec("canary", alarms=[])
    plan = preflight.run(
        ReleaseState.model_validate(state),
        ssm=aws.clients.ssm,
        ec2=aws.clients.ec2,
        autoscaling=aws.clients.autoscaling,
        cloudwatch=aws.clients.cloudwatch,
    )
    assert plan.target_slot == "green"
    assert "cloudwatch.DescribeAlarms" not in aws.calls


def test_a_rollback_release_ignores_the_alarm_that_started_it_and_skips_the_canary(
    aws: StubbedAws,
) -> None:
    # Given the fleet's alarm in ALARM (the bad release it undoes is serving)
    given(aws, "canary", World(firing=(ALARMS[1],)), through="refreshes")
    state = release_state("canary", planned=False, prepared=False)
    state["trigger"] = "rollback of web-1a2b: alarm phoenix-sandbox-web-5xx-rate"

    # When the rollback release's preflight runs
    plan = preflight.run(
        ReleaseState.model_validate(state),
        ssm=aws.clients.ssm,
        ec2=aws.clients.ec2,
        autoscaling=aws.clients.autoscaling,
        cloudwatch=aws.clients.cloudwatch,
    )

    # Then it passes without asking CloudWatch, and goes to full traffic in one step (to
    # green, the listener's second target group)
    assert "cloudwatch.DescribeAlarms" not in aws.calls
    assert [s.model_dump() for s in plan.steps] == [
        {"target": 100, "active": 0, "last": True, "first": 0, "second": 100}
    ]


def test_the_base_version_is_the_newest_a_deploy_made_not_a_release(aws: StubbedAws) -> None:
    # Given versions 1-12 of the template: 9 made by a deploy (CloudFormation never moves
    # the default version), 10-12 by releases since
    template = "lt-0123456789abcdef0"

    def version(number: int, description: str = "") -> dict[str, object]:
        return {"VersionNumber": number} | (
            {"VersionDescription": description} if description else {}
        )

    released = [version(n, f"phoenix release web-{n}") for n in (10, 11, 12)]
    aws.ec2.add_response(
        "describe_launch_template_versions",
        {"LaunchTemplateVersions": [released[-1]]},
        {"LaunchTemplateId": template, "Versions": ["$Latest"]},
    )
    aws.ec2.add_response(
        "describe_launch_template_versions",
        {"LaunchTemplateVersions": [version(n) for n in range(1, 10)] + released[:2]},
        {"LaunchTemplateId": template, "MinVersion": "1", "MaxVersion": "11", "MaxResults": 50},
    )

    # When preflight looks for the base of the new version, Then it is 9
    assert preflight.deployed_version(aws.clients.ec2, template) == 9


def _deploy_release(
    aws: StubbedAws, deployed: dict[str, object], serving: dict[str, object]
) -> None:
    """A deploy's release of the blue/green fleet (blue serves version 6 of its template);
    the template's newest version, 9, is the deploy's."""
    template = TEMPLATES["blue"]
    state = release_state("blue_green", planned=False, prepared=False)
    state["trigger"] = "deploy of phoenix-sandbox"
    given(aws, "blue_green", World(), through="parameters")
    aws.autoscaling.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [group("blue", "6", 3), group("green", "7", 0)]},
        {"AutoScalingGroupNames": [GROUPS["blue"], GROUPS["green"]]},
    )
    aws.ec2.add_response(
        "describe_launch_template_versions",
        {"LaunchTemplateVersions": [{"VersionNumber": 9, "LaunchTemplateData": deployed}]},
        {"LaunchTemplateId": template, "Versions": ["$Latest"]},
    )
    aws.ec2.add_response(
        "describe_launch_template_versions",
        {
            "LaunchTemplateVersions": [
                {"VersionNumber": 6, "LaunchTemplateData": serving},
                {"VersionNumber": 9, "LaunchTemplateData": deployed},
            ]
        },
        {"LaunchTemplateId": template, "Versions": ["6", "9"]},
    )
    preflight.check_deploy_changed(
        ReleaseState.model_validate(state),
        ssm=aws.clients.ssm,
        ec2=aws.clients.ec2,
        autoscaling=aws.clients.autoscaling,
    )


def test_a_deploy_that_changed_the_instance_type_goes_ahead(aws: StubbedAws) -> None:
    _deploy_release(
        aws,
        deployed={"ImageId": PREVIOUS_AMI, "InstanceType": "t4g.medium"},
        serving={"ImageId": AMI, "InstanceType": "t4g.small"},
    )


def test_a_deploy_that_changed_nothing_launched_ends_the_release(aws: StubbedAws) -> None:
    # Only the AMI differs: that is the release's to choose, not the deploy's
    with pytest.raises(preflight.NothingToReleaseError, match="version 9, the newest a deploy"):
        _deploy_release(
            aws,
            deployed={"ImageId": PREVIOUS_AMI, "InstanceType": "t4g.small"},
            serving={"ImageId": AMI, "InstanceType": "t4g.small"},
        )
