"""A drill's run on a real (moto) ledger and registry: a drill whose lock a rollback release
took ends as interrupted and leaves the slot to the release; one fleet's error stops no
other fleet's drill; a fleet that cannot drill waits its hour instead of taking a start on
every run; a rollback takes a drill's lock, any other release waits for it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from phoenix.drills.runtime import drill
from phoenix.drills.runtime.drill import DrillSettings
from phoenix.kernel import clock
from phoenix.kernel.attributes import typed
from phoenix.kernel.clients import Clients
from phoenix.kernel.ledger import Ledger, fleet_key, iso
from phoenix.kernel.locks import DrillLockError
from phoenix.kernel.names import registered_fleet
from phoenix.rollback.runtime import logic
from tests.ledger_table import create_ledger_table
from tests.release.release_state import CREDENTIALS, TABLE, fleet_spec

SETTINGS = DrillSettings(
    environment="sandbox", service_name="phoenix-drills", table_name=TABLE, region="us-east-1"
)
TARGET = "ami-0aaaaaaaaaaaaaaa1"


@pytest.fixture
def aws() -> Iterator[Clients]:
    with mock_aws():
        clients = Clients("us-east-1")
        create_ledger_table(boto3.client("dynamodb", region_name="us-east-1", **CREDENTIALS), TABLE)
        yield clients


def _register(aws: Clients, name: str, **changes: Any) -> None:
    spec = fleet_spec("blue_green", name=name, drill_every_seconds=7 * 86400, **changes)
    aws.ssm.put_parameter(
        Name=registered_fleet("sandbox", name), Value=json.dumps(spec), Type="String"
    )


def _item(aws: Clients, name: str, **attributes: Any) -> None:
    item = {**fleet_key(name), **{k: typed(v) for k, v in attributes.items()}}
    aws.dynamodb.put_item(TableName=TABLE, Item=item)


def _under_way(name: str, lock_owner: str) -> dict[str, Any]:
    started = clock.now() - timedelta(minutes=3)
    state = {
        "id": "drill-1",
        "ami": TARGET,
        "kind": "idle slot",
        "slot": "green",
        "group": f"phoenix-sandbox-{name}-green",
        "target_group": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/1",
        "started_at": iso(started),
    }
    return {
        "drill": state,
        "lock_owner": lock_owner,
        "lock_expires": iso(clock.now() + timedelta(minutes=20)),
        "previous_good_ami": TARGET,
    }


def test_a_drill_whose_lock_a_rollback_took_ends_as_interrupted(aws: Clients) -> None:
    # Given web's drill under way, and a rollback release that took web's lock from it
    _register(aws, "web")
    _item(aws, "web", **_under_way("web", lock_owner="web-rollback-7"))

    # When the drill function runs
    (outcome,) = drill.run(aws, SETTINGS)

    # Then the drill ends as interrupted, touching nothing of the fleet's (no Auto Scaling
    # call: the slot is the release's) and leaving the lock to the release
    assert (outcome.action, outcome.reason) == (
        "interrupted",
        "interrupted: web-rollback-7 holds the fleet",
    )
    item = Ledger(aws.dynamodb, TABLE).fleet_item("web")
    assert "drill" not in item
    assert (item["lock_owner"], item["last_drill_outcome"]) == ("web-rollback-7", "interrupted")
    records = aws.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :drill)",
        ExpressionAttributeValues={":pk": {"S": "FLEET#web"}, ":drill": {"S": "DRILL#"}},
    )["Items"]
    assert [r["outcome"]["S"] for r in records] == ["interrupted"]


def test_one_fleet_s_error_stops_no_other_fleet_s_drill(aws: Clients) -> None:
    # Given two drills under way, whose target groups do not exist: each run's
    # DescribeTargetHealth fails, for each fleet on its own
    for name in ("api", "web"):
        _register(aws, name)
        _item(aws, name, **_under_way(name, lock_owner="drill-1"))

    outcomes = drill.run(aws, SETTINGS)

    assert [(o.fleet, o.action) for o in outcomes] == [("api", "error"), ("web", "error")]
    assert all("TargetGroupNotFound" in o.reason for o in outcomes)


def test_a_fleet_that_cannot_drill_waits_its_hour(aws: Clients) -> None:
    # Given web due (its target registered: it is described first), with no weight
    # parameters: no slot is idle
    _register(aws, "web")
    image = aws.ec2.register_image(Name="target", RootDeviceName="/dev/xvda")["ImageId"]
    _item(aws, "web", previous_good_ami=image)

    (outcome,) = drill.run(aws, SETTINGS)

    assert (outcome.action, outcome.reason) == ("skipped", "no slot is idle")
    item = Ledger(aws.dynamodb, TABLE).fleet_item("web")
    assert item["last_drill_outcome"] == "skipped"
    spec = fleet_spec("blue_green", name="web", drill_every_seconds=7 * 86400)
    assert not drill.is_due(spec, item, clock.now() + timedelta(minutes=59))
    assert drill.is_due(spec, item, clock.now() + timedelta(minutes=61))


def test_a_rollback_takes_a_drill_s_lock_and_any_other_release_waits(aws: Clients) -> None:
    # Given web's drill holding the lock, after web's last release succeeded
    _item(
        aws,
        "web",
        **_under_way("web", lock_owner="drill-1"),
        last_release="web-5",
        last_outcome="succeeded",
    )
    book = Ledger(aws.dynamodb, TABLE)
    # Then an alarm's rollback is decided as if the fleet were free (a rollback release)
    assert logic.decide(book.fleet_item("web"), clock.now()).action == "release"
    # and a release waits for the drill, while the rollback release takes its lock
    with pytest.raises(DrillLockError):
        book.acquire("web", "web-6", hold=timedelta(hours=6))
    book.acquire("web", "web-rollback-7", hold=timedelta(hours=6), over_drill=True)
    assert book.fleet_item("web")["lock_owner"] == "web-rollback-7"


def test_an_idle_slot_on_another_ami_fails_the_drill_at_once_and_takes_no_lock(
    aws: Clients,
) -> None:
    # Given web due, its idle slot (green, weight 0) on a version that names another AMI
    target = aws.ec2.register_image(Name="target", RootDeviceName="/dev/xvda")["ImageId"]
    other = aws.ec2.register_image(Name="other", RootDeviceName="/dev/xvda")["ImageId"]
    template = aws.ec2.create_launch_template(
        LaunchTemplateName="web-green", LaunchTemplateData={"ImageId": other}
    )["LaunchTemplate"]["LaunchTemplateId"]
    aws.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web-green",
        LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
        MinSize=0,
        MaxSize=2,
        AvailabilityZones=["us-east-1a"],
    )
    spec = fleet_spec("blue_green", name="web", drill_every_seconds=7 * 86400)
    spec["slots"]["green"] |= {"group": "web-green", "launch_template": template}
    aws.ssm.put_parameter(
        Name=registered_fleet("sandbox", "web"), Value=json.dumps(spec), Type="String"
    )
    for slot, weight in (("blue", "100"), ("green", "0")):
        aws.ssm.put_parameter(
            Name=f"/phoenix/sandbox/web/{slot}/weight", Value=weight, Type="String"
        )
    _item(aws, "web", previous_good_ami=target)

    (outcome,) = drill.run(aws, SETTINGS)

    assert outcome.action == "failed"
    assert outcome.reason == (
        f"the idle slot's launch template version 1 names {other}, not the rollback target {target}"
    )
    item = Ledger(aws.dynamodb, TABLE).fleet_item("web")
    assert (item["last_drill_outcome"], "lock_owner" in item) == ("failed", False)
