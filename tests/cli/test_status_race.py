"""`phoenix status` reads the ledger before the pointer: a rollback release's Succeed step
(pointer written, then the ledger closed) that runs between any two of its reads never
gives a row whose last release is the rollback, succeeded, with the pointer it replaced."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from phoenix.cli import reads
from phoenix.kernel.ledger import Ledger
from phoenix.release.runtime import strategy
from phoenix.release.runtime.models import ReleaseState
from tests.cli.test_cli import TABLE, World, _phoenix, world  # noqa: F401 - the fixture
from tests.release.release_state import plan, release_state

H = "ami-0aaaaaaaaaaaaaaa1"  # 2.0.0's AMI: serving before the rollback release
A0 = "ami-0bbbbbbbbbbbbbbb2"  # the AMI before 2.0.0: what the rollback release puts back
POINTER = "/phoenix/sandbox/web/ami"
R2 = "web-2-0-0"
RB = f"rollback-{R2}"


def _rollback_release_succeeds() -> None:
    """RB's Succeed step as finalize.succeed does it: commit (pointer last), then the
    ledger's close_success, then the lock freed."""
    state = ReleaseState.model_validate(
        release_state(
            ami=A0,
            trigger=f"rollback of {R2}: requested by tests",
            release={"id": RB, "started_at": "2026-11-25T09:00:00+00:00"},
            plan=plan(active="green", from_ami=H),
        )
    )
    ssm = boto3.client("ssm", region_name="us-east-1")
    strategy.commit(ssm, state, state.need_plan(), state.need_version())
    book = Ledger(boto3.client("dynamodb", region_name="us-east-1"), TABLE)
    assert book.close_success("web", RB, good_ami=A0, previous_ami="", window=None)
    book.release_lock("web", RB)


@pytest.mark.parametrize("when", ["read_parameters", "_serving", "fleet_items"])
def test_status_never_says_the_rollback_succeeded_before_its_pointer(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    when: str,
) -> None:
    # Given 2.0.0 (H) serving, rolled back by a rollback release RB of A0 in flight
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name=POINTER, Value=H, Type="String")
    for slot, weight in (("blue", "0"), ("green", "100")):
        ssm.put_parameter(Name=f"/phoenix/sandbox/web/{slot}/weight", Value=weight, Type="String")
        ssm.put_parameter(
            Name=f"/phoenix/sandbox/web/{slot}/launch-template-version", Value="1", Type="String"
        )
    world.fleet_item(
        lock_owner=RB,
        lock_expires="2999-01-01T00:00:00.000000Z",
        last_release=R2,
        last_outcome="rolled back",
        rolled_back=R2,
        last_good_ami=H,
        previous_good_ami=A0,
        flight={"release": RB, "rollback": True, "from_ami": H, "to_ami": A0},
    )

    # When RB's Succeed step runs just before one of status's reads (`when`)
    monkeypatch.setattr(reads, "_serving", lambda *_: {})
    original = getattr(reads, when)

    def then_read(*args: Any, **kwargs: Any) -> Any:
        _rollback_release_succeeds()
        return original(*args, **kwargs)

    monkeypatch.setattr(reads, when, then_read)
    code, out, err = _phoenix("status", "--json")
    assert code == 0, err
    (web,) = json.loads(out)

    # Then a row that says RB succeeded has the pointer RB released
    if (web["last_release"], web["last_outcome"]) == (RB, "succeeded"):
        assert web["pointer"] == A0, web
    assert ssm.get_parameter(Name=POINTER)["Parameter"]["Value"] == A0
