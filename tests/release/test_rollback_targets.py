"""Rollback-target tags (docs/adr/0008-rollback-target-tags.md, and ADR 0016 for the AMI
serving): an AMI carries `phoenix:rollback-target` exactly while some fleet of the
environment serves it or may roll back to it, so the image lifecycle keeps those and
nothing else (Stubber; the embedded AWS runs it end to end in
tests/integration/test_rollback_targets.py and test_retention.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from aws_cdk.assertions import Template
from botocore.exceptions import ClientError
from botocore.stub import ANY

from phoenix.kernel import attributes, ledger
from phoenix.release.handlers.finalize import handle
from phoenix.release.runtime import finalize
from phoenix.release.spec import step_handler
from tests.conftest import SynthesizedApp
from tests.iam import actions_of
from tests.release.release_state import (
    AMI,
    PREVIOUS_AMI,
    SETTINGS,
    TABLE,
    StubbedAws,
    expect_unlock,
    fleet_key,
    release_state,
    step_input,
)

OLDER_AMI = "ami-0ccccccccccccccc3"
TAG = [{"Key": "phoenix:rollback-target", "Value": "true"}]


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


# --- what each call looks like ------------------------------------------------------------


def expect_fleet_read(
    aws: StubbedAws,
    *,
    previous: str | None = PREVIOUS_AMI,
    window: str | None = None,
    held: Sequence[str] = (),
) -> None:
    """The fleet item as the release left it: serving AMI, the AMI before it (`previous`),
    the rollback window's AMI, and the AMIs the fleet held rollback targets on (`held`)."""
    item: dict[str, Any] = {"last_good_ami": AMI, "previous_good_ami": previous}
    if window:
        item["warm_slot"] = {"release": "web-3f9c2a", "previous_ami": window}
    if held:
        item["rollback_targets"] = list(held)
    typed = {name: attributes.typed(value) for name, value in item.items() if value is not None}
    aws.dynamodb.add_response(
        "get_item",
        {"Item": fleet_key() | typed},
        {"TableName": TABLE, "Key": fleet_key(), "ConsistentRead": True},
    )


def _holders(holders: Sequence[str]) -> dict[str, Any]:
    return {"Attributes": {"holders": {"SS": list(holders)}}} if holders else {}


def expect_holds(
    aws: StubbedAws, ami: str, before: Sequence[str] = (), holder: str = "web"
) -> None:
    aws.dynamodb.add_response(
        "update_item",
        _holders(before),
        {
            "TableName": TABLE,
            "Key": ledger.target_key(ami),
            "UpdateExpression": "SET updated_at = :at ADD holders :fleet",
            "ExpressionAttributeValues": {":fleet": {"SS": [holder]}, ":at": ANY},
            "ReturnValues": "UPDATED_OLD",
        },
    )


def expect_drops(aws: StubbedAws, ami: str, after: Sequence[str] = ()) -> None:
    aws.dynamodb.add_response(
        "update_item",
        _holders(after),
        {
            "TableName": TABLE,
            "Key": ledger.target_key(ami),
            "UpdateExpression": "SET updated_at = :at DELETE holders :fleet",
            "ExpressionAttributeValues": {":fleet": {"SS": ["web"]}, ":at": ANY},
            "ReturnValues": "UPDATED_NEW",
        },
    )


def expect_holders_read(aws: StubbedAws, ami: str, holders: Sequence[str] = ()) -> None:
    item = {"holders": {"SS": list(holders)}} if holders else {}
    aws.dynamodb.add_response(
        "get_item",
        {"Item": ledger.target_key(ami) | item},
        {"TableName": TABLE, "Key": ledger.target_key(ami), "ConsistentRead": True},
    )


def expect_described(aws: StubbedAws, ami: str, *, tagged: bool = False) -> None:
    image = {"ImageId": ami, "Tags": TAG if tagged else []}
    aws.ec2.add_response("describe_images", {"Images": [image]}, {"ImageIds": [ami]})


def expect_tagged(aws: StubbedAws, *amis: str) -> None:
    aws.ec2.add_response("create_tags", {}, {"Resources": list(amis), "Tags": TAG})


UNTAG = {"Tags": [{"Key": "phoenix:rollback-target"}]}


def expect_untagged(aws: StubbedAws, ami: str) -> None:
    aws.ec2.add_response("delete_tags", {}, {"Resources": [ami], **UNTAG})


def expect_recorded(aws: StubbedAws, *amis: str) -> None:
    aws.dynamodb.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": fleet_key(),
            "UpdateExpression": "SET rollback_targets = :amis",
            "ExpressionAttributeValues": {":amis": attributes.typed(sorted(amis))},
        },
    )


def expect_target_moved(aws: StubbedAws, *, window: bool) -> None:
    """A success's reconciliation: the AMI it released joins the AMI it replaced (held
    while it served, now the fleet's rollback target); nothing held before that."""
    expect_fleet_read(aws, window=PREVIOUS_AMI if window else None, held=[PREVIOUS_AMI])
    expect_described(aws, AMI)
    expect_holds(aws, AMI)
    expect_tagged(aws, AMI)
    expect_recorded(aws, AMI, PREVIOUS_AMI)


def _keep(aws: StubbedAws) -> None:
    finalize.keep_rollback_targets(aws.clients, SETTINGS, "web")


def _moved(aws: StubbedAws, *, older_holders: Sequence[str] = ()) -> None:
    """Queue a success's calls: AMI (released) is held, PREVIOUS_AMI (served, now the
    rollback target) stays held, OLDER_AMI (the target before) is let go and stays held
    by `older_holders`."""
    expect_fleet_read(aws, window=PREVIOUS_AMI, held=[PREVIOUS_AMI, OLDER_AMI])
    expect_described(aws, AMI)
    expect_holds(aws, AMI)
    expect_tagged(aws, AMI)
    expect_drops(aws, OLDER_AMI, after=older_holders)


# --- the tag follows the fleet item -------------------------------------------------------


def test_the_tag_moves_from_the_old_rollback_target_to_the_new_one(aws: StubbedAws) -> None:
    # Given the fleet held PREVIOUS_AMI (serving) and OLDER_AMI (its rollback target), and
    # now names AMI (serving) and PREVIOUS_AMI (the previous good AMI and the rollback
    # window's), and no other fleet holds OLDER_AMI
    _moved(aws)
    expect_untagged(aws, OLDER_AMI)
    expect_holders_read(aws, OLDER_AMI)
    expect_recorded(aws, AMI, PREVIOUS_AMI)

    # When the tags are reconciled
    _keep(aws)

    # Then the new target is tagged before the old one loses its tag
    tags = [call for call in aws.calls if call.endswith("Tags")]
    assert tags == ["ec2.CreateTags", "ec2.DeleteTags"]


def test_an_ami_another_fleet_may_roll_back_to_keeps_its_tag(aws: StubbedAws) -> None:
    # Given the fleet lets go of OLDER_AMI, which the `api` fleet still holds
    _moved(aws, older_holders=["api"])
    expect_recorded(aws, AMI, PREVIOUS_AMI)

    _keep(aws)

    assert "ec2.DeleteTags" not in aws.calls


def test_a_retry_repeats_the_same_writes_and_a_later_one_changes_nothing(
    aws: StubbedAws,
) -> None:
    # Given a first attempt that failed once OLDER_AMI was let go, before its tag was removed
    _moved(aws)
    aws.ec2.add_client_error("delete_tags", service_error_code="RequestLimitExceeded")
    with pytest.raises(ClientError, match="RequestLimitExceeded"):
        _keep(aws)

    # When the step is retried: the same writes, nothing counted twice (AMI is tagged
    # now, but held by this fleet: not mistaken for a tag from before holders)
    expect_fleet_read(aws, window=PREVIOUS_AMI, held=[PREVIOUS_AMI, OLDER_AMI])
    expect_described(aws, AMI, tagged=True)
    expect_holds(aws, AMI, before=["web"])
    expect_tagged(aws, AMI)
    expect_drops(aws, OLDER_AMI)
    expect_untagged(aws, OLDER_AMI)
    expect_holders_read(aws, OLDER_AMI)
    expect_recorded(aws, AMI, PREVIOUS_AMI)
    _keep(aws)

    # Then once recorded, a further retry reads the fleet item and has nothing to do
    aws.calls.clear()
    expect_fleet_read(aws, window=PREVIOUS_AMI, held=[AMI, PREVIOUS_AMI])
    _keep(aws)
    assert aws.calls == ["dynamodb.GetItem"]


def test_an_ami_tagged_before_holders_were_recorded_is_never_untagged(aws: StubbedAws) -> None:
    # Given PREVIOUS_AMI already tagged and held by nobody: tagged before this change, by
    # a fleet that may still roll back to it (AMI, serving, is not tagged yet)
    expect_fleet_read(aws)
    expect_described(aws, AMI)
    expect_holds(aws, AMI)
    expect_described(aws, PREVIOUS_AMI, tagged=True)
    expect_holds(aws, PREVIOUS_AMI)

    # Then a holder no fleet can be keeps it, whatever this fleet does later
    expect_holds(aws, PREVIOUS_AMI, holder=ledger.UNTRACKED_HOLDER)
    expect_tagged(aws, AMI, PREVIOUS_AMI)
    expect_recorded(aws, AMI, PREVIOUS_AMI)
    _keep(aws)


def test_an_ami_another_fleet_takes_while_it_is_untagged_gets_its_tag_back(
    aws: StubbedAws,
) -> None:
    # Given `api` held OLDER_AMI only after this fleet let go of it, before its tag went
    _moved(aws)
    expect_untagged(aws, OLDER_AMI)
    expect_holders_read(aws, OLDER_AMI, ["api"])
    expect_tagged(aws, OLDER_AMI)
    expect_recorded(aws, AMI, PREVIOUS_AMI)

    _keep(aws)


def test_a_deregistered_ami_is_let_go_without_failing(aws: StubbedAws) -> None:
    _moved(aws)
    aws.ec2.add_client_error("delete_tags", service_error_code="InvalidAMIID.NotFound")
    expect_holders_read(aws, OLDER_AMI)
    expect_recorded(aws, AMI, PREVIOUS_AMI)

    _keep(aws)


@pytest.mark.parametrize(
    ("item", "targets"),
    [
        ({"last_good_ami": AMI, "previous_good_ami": PREVIOUS_AMI}, {AMI, PREVIOUS_AMI}),
        # a rollback release: nothing before it; its window keeps the AMI it replaced
        (
            {
                "last_good_ami": AMI,
                "previous_good_ami": "",
                "warm_slot": {"previous_ami": OLDER_AMI},
            },
            {AMI, OLDER_AMI},
        ),
        # a re-release inside its window
        (
            {
                "last_good_ami": AMI,
                "previous_good_ami": PREVIOUS_AMI,
                "warm_slot": {"previous_ami": AMI},
            },
            {AMI, PREVIOUS_AMI},
        ),
        ({}, set()),
    ],
    ids=["previous good", "rollback release window", "re-release window", "no release"],
)
def test_the_rollback_targets_a_fleet_item_names(item: dict[str, Any], targets: set[str]) -> None:
    assert ledger.rollback_targets(item) == targets


# --- the window's end ------------------------------------------------------------------------


def test_the_window_end_untags_the_window_ami_that_nothing_else_names(aws: StubbedAws) -> None:
    # Given a rollback release's window (it kept PREVIOUS_AMI, the AMI it undid, warm)
    # that ends: window closed, lock taken, old slot emptied (tests/release/
    # test_release_finalize.py checks those calls)
    aws.dynamodb.add_response("update_item", {})
    aws.dynamodb.add_response("update_item", {})
    aws.ssm.add_response("put_parameter", {"Version": 3})
    aws.autoscaling.add_response("update_auto_scaling_group", {})
    # When its AMI is no longer named by the fleet item (no AMI before the rollback's)
    expect_fleet_read(aws, previous="", held=[AMI, PREVIOUS_AMI])
    # Then it loses its tag, and the AMI serving keeps its own
    expect_drops(aws, PREVIOUS_AMI)
    expect_untagged(aws, PREVIOUS_AMI)
    expect_holders_read(aws, PREVIOUS_AMI)
    expect_recorded(aws, AMI)
    expect_unlock(aws)

    result = handle(step_input(release_state(), "retire"), SETTINGS, aws.clients)

    assert result == {"retired": True}


# --- the grants ------------------------------------------------------------------------------


def test_finalize_may_tag_and_untag_images_with_that_tag_key_only(
    synthesized: SynthesizedApp,
) -> None:
    template = Template.from_json(synthesized.template("phoenix-production"))
    (function,) = [
        f
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == step_handler("release_finalize")
    ]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    tagging = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if {"ec2:CreateTags", "ec2:DeleteTags"} & set(actions_of(statement))
    ]
    # (CDK merges the two statements, which have the same resource and conditions)
    assert [sorted(actions_of(s)) for s in tagging] == [["ec2:CreateTags", "ec2:DeleteTags"]]
    assert tagging[0]["Resource"] == "arn:aws:ec2:us-east-1::image/*"
    # Without the Null condition, a DeleteTags naming no key would pass ForAllValues and
    # remove every tag of the image.
    assert tagging[0]["Condition"] == {
        "ForAllValues:StringEquals": {"aws:TagKeys": ["phoenix:rollback-target"]},
        "Null": {"aws:TagKeys": "false"},
    }
