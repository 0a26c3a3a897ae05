"""The rollback function and a new slot that is still warming up: its alarms are the
release's warm-up gate's to judge until the gate passes (docs/rollback.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from phoenix.rollback.runtime.handler import handle
from tests.release.release_state import StubbedAws
from tests.rollback.rollback_world import (
    alarm,
    expect_claim,
    expect_fleets,
    expect_read,
    expect_weights,
    in_flight,
    settings,
)


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


# --- the target slot's alarms while it warms up --------------------------------------------

GREEN_UNHEALTHY = "phoenix-sandbox-web-green-unhealthy-hosts"


def test_an_alarm_of_the_warming_target_slot_is_left_to_the_warm_up_gate(
    aws: StubbedAws,
) -> None:
    expect_fleets(aws, alarm(GREEN_UNHEALTHY))
    # Given a canary release in flight whose new slot (green) has not passed warm-up
    expect_read(aws, in_flight())

    # When green's unhealthy-hosts alarm fires (instances still booting, no traffic yet)
    result = handle(alarm(GREEN_UNHEALTHY), settings(), aws.clients)

    # Then nothing moves: the release's own warm-up gate judges the slot
    assert result["action"] == "nothing"
    assert "warming up" in result["reason"]
    assert aws.calls == ["ssm.GetParameters", "dynamodb.GetItem"]


def test_once_warm_the_target_slots_alarm_rolls_the_release_back(aws: StubbedAws) -> None:
    expect_fleets(aws, alarm(GREEN_UNHEALTHY))
    # Given the same release after its warm-up gate passed
    expect_read(aws, in_flight(warm_at="2026-11-25T12:00:00Z"))
    expect_weights(aws, serve="blue", drop="green")
    expect_claim(aws, "in_flight", refused="ProvisionedThroughputExceededException")

    # When green's alarm fires, Then traffic goes back to blue at once
    with pytest.raises(ClientError):
        handle(alarm(GREEN_UNHEALTHY), settings(), aws.clients)
    assert aws.calls[:3] == ["ssm.GetParameters", "dynamodb.GetItem", "elbv2.ModifyListener"]


def test_the_fleet_s_unhealthy_hosts_alarm_counts_the_warming_slot_too(aws: StubbedAws) -> None:
    expect_fleets(aws, alarm("phoenix-sandbox-web-unhealthy-hosts"))
    # Given the same release before its warm-up passed: the fleet's unhealthy-hosts alarm
    # adds up both slots' unhealthy targets, the booting ones included
    expect_read(aws, in_flight())

    result = handle(alarm("phoenix-sandbox-web-unhealthy-hosts"), settings(), aws.clients)

    assert result["action"] == "nothing"
    assert aws.calls == ["ssm.GetParameters", "dynamodb.GetItem"]


def test_the_fleet_s_5xx_alarm_acts_during_warm_up(aws: StubbedAws) -> None:
    expect_fleets(aws, alarm("phoenix-sandbox-web-5xx-rate"))
    # It counts only requests the load balancer served: the warming slot serves none
    expect_read(aws, in_flight())
    expect_weights(aws, serve="blue", drop="green")
    expect_claim(aws, "in_flight", refused="ProvisionedThroughputExceededException")

    with pytest.raises(ClientError):
        handle(alarm("phoenix-sandbox-web-5xx-rate"), settings(), aws.clients)
    assert aws.calls[:3] == ["ssm.GetParameters", "dynamodb.GetItem", "elbv2.ModifyListener"]
