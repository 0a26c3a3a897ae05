"""The `phoenix` command on moto's AWS (typer's runner): history by the ledger's index,
requests as events carrying the caller's identity, and bad input refused with one line,
exit code 2 and no event. tests/local/test_serve.py runs it against `python -m local
serve` in another process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from phoenix.cli import reads
from phoenix.cli.main import app
from phoenix.kernel.attributes import typed
from phoenix.kernel.history import releases
from phoenix.kernel.names import environment_record, execution_name, registered_fleet
from tests.ledger_table import create_ledger_table
from tests.release.release_state import fleet_spec

REGION = "us-east-1"
TABLE = "ledger"
QUEUE = "events"


class World:
    """moto's AWS with one environment (`sandbox`, fleet `web`) and a queue that receives
    every `phoenix` event put on the default bus."""

    def __init__(self) -> None:
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.ec2 = boto3.client("ec2", region_name=REGION)
        ssm = boto3.client("ssm", region_name=REGION)
        record = {"environment": "sandbox", "table": TABLE, "topic": "arn:aws:sns:x",
                  "state_machine": "arn:aws:states:x", "primary": True}  # fmt: skip
        ssm.put_parameter(
            Name=environment_record("sandbox"), Value=json.dumps(record), Type="String"
        )
        ssm.put_parameter(
            Name=registered_fleet("sandbox", "web"), Value=json.dumps(fleet_spec()), Type="String"
        )
        create_ledger_table(self.dynamodb, TABLE)
        sqs = boto3.client("sqs", region_name=REGION)
        self.queue = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])
        events = boto3.client("events", region_name=REGION)
        events.put_rule(Name="all", EventPattern=json.dumps({"source": ["phoenix"]}))
        events.put_targets(Rule="all", Targets=[{"Id": "q", "Arn": arn["Attributes"]["QueueArn"]}])
        self._sqs = sqs

    def events(self) -> list[dict[str, Any]]:
        """Every event the queue received so far."""
        messages = self._sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]

    def fleet_item(self, **values: Any) -> None:
        item = {"pk": {"S": "FLEET#web"}, "sk": {"S": "FLEET"}}
        self.dynamodb.put_item(
            TableName=TABLE, Item=item | {k: typed(v) for k, v in values.items()}
        )

    def release(self, number: int, outcome: str = "succeeded", **more: Any) -> str:
        """A release item started `number` minutes after 2026-01-01T00:00."""
        release_id = f"web-{number:05d}"
        hours, minutes = divmod(number, 60)
        days, hours = divmod(hours, 24)
        started = f"2026-01-{days + 1:02d}T{hours:02d}:{minutes:02d}:00+00:00"
        values = {"release_id": release_id, "fleet": "web", "started_at": started,
                  "ended_at": started, "outcome": outcome, "to_ami": "ami-0123456789abcdef0",
                  "trigger": "requested by alice", "strategy": "canary",
                  "steps": [{"at": started, "step": "preflight passed",
                             "from_ami": "ami-0fedcba9876543210"}]} | more  # fmt: skip
        item = {"pk": {"S": "FLEET#web"}, "sk": {"S": f"RELEASE#{release_id}"}}
        self.dynamodb.put_item(
            TableName=TABLE, Item=item | {k: typed(v) for k, v in values.items()}
        )
        return release_id


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                        "AWS_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield World()


def _phoenix(*arguments: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(arguments))
    return result.exit_code, result.stdout, result.stderr


# --- history --------------------------------------------------------------------------------


def test_history_is_newest_first_within_a_limit_or_a_time_range(world: World) -> None:
    for number in range(30):
        world.release(number, "rolled back" if number == 28 else "succeeded")

    code, out, _ = _phoenix("history", "web", "--limit", "3", "--json")

    assert code == 0
    rows = json.loads(out)
    assert [r["release"] for r in rows] == ["web-00029", "web-00028", "web-00027"]
    assert rows[1]["outcome"] == "rolled back"
    assert (rows[0]["from_ami"], rows[0]["to_ami"]) == ("ami-0fedcba9876543210",
                                                        "ami-0123456789abcdef0")  # fmt: skip
    code, out, _ = _phoenix("history", "web", "--since", "2026-01-01T00:10:00",
                            "--until", "2026-01-01T00:12:00", "--json")  # fmt: skip
    assert [r["release"] for r in json.loads(out)] == ["web-00012", "web-00011", "web-00010"]
    code, out, _ = _phoenix("history", "web")
    assert code == 0
    assert "web-00029" in out


def test_a_history_query_reads_only_what_it_returns_among_1000_releases(world: World) -> None:
    # Given a fleet with 1,000 releases (and another fleet's, which no query reads)
    for number in range(1000):
        world.release(number)
    world.dynamodb.put_item(
        TableName=TABLE,
        Item={"pk": {"S": "FLEET#api"}, "sk": {"S": "RELEASE#api-1"}, "fleet": {"S": "api"},
              "started_at": {"S": "2026-01-01T00:00:30+00:00"}},
    )  # fmt: skip

    # When the last ten are asked for, and an hour's worth
    last = releases(world.dynamodb, TABLE, "web", limit=10)
    hour = releases(world.dynamodb, TABLE, "web", since="2026-01-01T10:00:00+00:00",
                    until="2026-01-01T10:59:59+00:00")  # fmt: skip

    # Then each read exactly what it returned
    assert [r["release_id"] for r in last.releases] == [f"web-{n:05d}" for n in range(999, 989, -1)]
    assert last.read == 10
    assert len(hour.releases) == 60
    assert hour.read == 60


# --- requests -------------------------------------------------------------------------------


def test_a_release_request_names_the_caller_and_prints_the_release_id(world: World) -> None:
    ami = world.ec2.register_image(Name="web-v2", RootDeviceName="/dev/xvda")["ImageId"]

    code, out, _ = _phoenix("release", "web", "--ami", ami, "--reason", "hotfix")

    assert code == 0, out
    (event,) = world.events()
    assert event["detail-type"] == "Release Requested"
    caller = boto3.client("sts", region_name=REGION).get_caller_identity()["Arn"]
    assert event["detail"] == {"fleet": "web", "ami": ami, "requested_by": caller,
                               "reason": "hotfix"}  # fmt: skip
    assert f"release {execution_name('web', event['id'])} requested" in out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--env", "prod", "status"], "no environment 'prod' in us-east-1"),
        (["history", "api"], "no fleet 'api' in sandbox (fleets: web)"),
        (["release", "web", "--ami", "ami-0123456789abcdef0"], "no AMI ami-0123456789abcdef0"),
        (["release", "web", "--ami", "latest"], "'latest' is not an AMI id"),
        (
            ["rollback", "web", "--reason", "test"],
            "nothing to roll back on web: no successful release to roll back",
        ),
        (["approve", "web", "--reason", "ok"], "web has no canary step awaiting approval"),
        (["history", "web", "--since", "yesterday"], "--since 'yesterday' is not an ISO 8601"),
    ],
    ids=[
        "environment",
        "fleet",
        "missing AMI",
        "not an AMI",
        "nothing to roll back",
        "nothing held",
        "time",
    ],
)
def test_bad_input_is_one_line_exit_code_2_and_no_event(
    world: World, arguments: list[str], message: str
) -> None:
    code, _, err = _phoenix(*arguments)

    assert code == 2
    assert err.startswith(f"phoenix: {message}")
    assert err.count("\n") == 1
    assert world.events() == []


def test_a_rollback_of_the_last_success_is_requested_by_the_caller(world: World) -> None:
    world.fleet_item(last_release="web-00001", last_outcome="succeeded",
                     previous_good_ami="ami-0fedcba9876543210")  # fmt: skip

    code, out, _ = _phoenix("rollback", "web", "--reason", "test")

    assert code == 0
    assert out.strip() == "rollback of release web-00001 requested on web"
    (event,) = world.events()
    assert event["detail-type"] == "Rollback Requested"
    assert event["detail"]["reason"] == "test"
    assert event["detail"]["requested_by"].startswith("arn:aws:")


def test_a_held_step_is_approved_naming_its_release(world: World) -> None:
    world.fleet_item(lock_owner="web-00002", approval={"token": "t", "release": "web-00002",
                                                        "traffic": 25})  # fmt: skip

    code, out, _ = _phoenix("approve", "web", "--reason", "known noise")

    assert code == 0
    assert out.strip() == "release web-00002: canary step at 25% approved"
    (event,) = world.events()
    assert event["detail-type"] == "Canary Step Approved"
    assert event["detail"]["release_id"] == "web-00002"


def test_two_environments_need_env(world: World) -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=environment_record("staging"), Value="{}", Type="String"
    )
    code, _, err = _phoenix("status")
    assert code == 2
    assert err == "phoenix: --env is needed: environments here are sandbox, staging\n"


# --- watch ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("outcome", "code"), [("succeeded", 0), ("rolled back", 1)])
def test_watch_prints_the_steps_and_exits_by_the_outcome(
    world: World, outcome: str, code: int
) -> None:
    release_id = world.release(7, outcome, reason="alarm web-5xx" if code else "")

    exit_code, out, _ = _phoenix("watch", release_id, "--interval", "0.5")

    assert exit_code == code
    assert "preflight passed" in out
    assert out.strip().splitlines()[-1].startswith(f"{release_id}: {outcome}")


def test_status_shows_a_drill_holding_the_fleet_not_a_release(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given web held by a rollback drill, its last drill having failed (what serves is
    # not this test's: tests/cli/test_status_race.py reads no groups either)
    monkeypatch.setattr(reads, "_serving", lambda *_: {})
    drill = {"id": "drill-20261203T090000Z", "ami": "ami-0aaaaaaaaaaaaaaa1",
             "kind": "idle slot", "started_at": "2026-12-03T09:00:00.000000Z"}  # fmt: skip
    world.fleet_item(
        lock_owner=drill["id"],
        lock_expires="2026-12-03T09:30:00.000000Z",
        drill=drill | {"group": "phoenix-sandbox-web-green"},
        last_drill_at="2026-11-26T09:00:00.000000Z",
        last_drill_outcome="failed",
        last_drill_reason="the rollback target ami-0bbbbbbbbbbbbbbb2 is deregistered",
    )

    code, out, err = _phoenix("status", "--json")

    # Then status shows the drill (no release in flight) and the last drill's outcome
    assert code == 0, err
    (row,) = json.loads(out)
    assert (row["in_flight"], row["drill"]) == (None, drill)
    assert row["last_drill"] == {
        "at": "2026-11-26T09:00:00.000000Z",
        "outcome": "failed",
        "reason": "the rollback target ami-0bbbbbbbbbbbbbbb2 is deregistered",
    }
    code, out, _ = _phoenix("status")
    assert code == 0
    assert "rollback drill" in out
