"""Stack drift in the drift check (phoenix/drift/runtime/stacks.py), against botocore's
CloudFormation model (Stubber): the last detection's results become each fleet's
findings, the next detection asks for the fleets' resources, a stack CloudFormation
refuses is left to the next run, and a fleet set to remediate is not released for it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.stub import Stubber

from phoenix.drift.runtime import check, stacks
from phoenix.drift.runtime.check import DriftSettings, Facts, Finding, FleetDrift
from phoenix.drift.runtime.stacks import check_stacks
from phoenix.kernel import observed
from phoenix.kernel.clients import Clients
from phoenix.kernel.observed import ObservedSlot

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
PUT = {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}
WHEN = datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
SPECS: dict[str, dict[str, Any]] = {
    "web": {"stack": "phoenix-sandbox", "drift_resources": ["FleetwebGroup", "FleetwebSg"]},
    "api": {"stack": "phoenix-sandbox", "drift_resources": ["FleetapiGroup"]},
    "jobs": {"stack": "phoenix-sandbox-fleets-1", "drift_resources": ["FleetjobsGroup"]},
}


def _drift(logical: str, status: str, **more: Any) -> dict[str, Any]:
    return {
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/phoenix-sandbox/1",
        "LogicalResourceId": logical,
        "ResourceType": "AWS::AutoScaling::AutoScalingGroup",
        "StackResourceDriftStatus": status,
        "Timestamp": WHEN,
        **more,
    }


def _max_size(actual: str) -> dict[str, Any]:
    difference = {
        "PropertyPath": "/MaxSize",
        "ExpectedValue": "4",
        "ActualValue": actual,
        "DifferenceType": "NOT_EQUAL",
    }
    return {"PropertyDifferences": [difference]}


def _client() -> Any:
    return boto3.client(
        "cloudformation",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - not a credential
    )


def _read(
    stubber: Stubber, stack: str, drifts: list[dict[str, Any]], *, page_in: str = "",
    more: str = "",
) -> None:  # fmt: skip
    given: dict[str, Any] = {"StackName": stack, "MaxResults": 100}
    page: dict[str, Any] = {"StackResourceDrifts": drifts}
    if more:
        page["NextToken"] = more
    if page_in:
        given["NextToken"] = page_in
    stubber.add_response("describe_stack_resource_drifts", page, given)


def test_the_last_results_are_each_fleet_s_and_the_next_detection_asks_for_its_resources() -> None:
    cloudformation = _client()
    with Stubber(cloudformation) as stubber:
        # the main stack's results come in two pages; a resource of no fleet is left out
        _read(stubber, "phoenix-sandbox", [_drift("FleetwebGroup", "MODIFIED", **_max_size("10"))],
              more="2")  # fmt: skip
        _read(stubber, "phoenix-sandbox", [_drift("FleetapiGroup", "DELETED"),
              _drift("NetworkVpc", "MODIFIED"), _drift("FleetwebSg", "IN_SYNC")],
              page_in="2")  # fmt: skip
        stubber.add_response(
            "detect_stack_drift",
            {"StackDriftDetectionId": "d-1"},
            {
                "StackName": "phoenix-sandbox",
                "LogicalResourceIds": ["FleetapiGroup", "FleetwebGroup", "FleetwebSg"],
            },
        )
        _read(stubber, "phoenix-sandbox-fleets-1", [])
        stubber.add_response(
            "detect_stack_drift",
            {"StackDriftDetectionId": "d-2"},
            {"StackName": "phoenix-sandbox-fleets-1", "LogicalResourceIds": ["FleetjobsGroup"]},
        )
        found = check_stacks(cloudformation, SPECS)
        stubber.assert_no_pending_responses()
    assert set(found) == {"web", "api"}
    (web,) = found["web"]
    assert (web.logical_id, web.found) == ("FleetwebGroup", "/MaxSize 10")
    assert web.expected == "/MaxSize 4"
    (api,) = found["api"]
    assert (api.status, api.found) == ("DELETED", "deleted")


def test_a_resource_the_last_detection_could_not_check_is_told_of(caplog: Any) -> None:
    cloudformation = _client()
    with Stubber(cloudformation) as stubber:
        # web's security group has no result: its read failed
        _read(stubber, "phoenix-sandbox", [_drift("FleetwebGroup", "IN_SYNC"),
              _drift("FleetapiGroup", "IN_SYNC")])  # fmt: skip
        stubber.add_response("detect_stack_drift", {"StackDriftDetectionId": "d-1"})
        _read(stubber, "phoenix-sandbox-fleets-1", [])  # no detection yet: nothing to tell
        stubber.add_response("detect_stack_drift", {"StackDriftDetectionId": "d-2"})
        assert check_stacks(cloudformation, SPECS) == {}
    (told,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert told.getMessage() == "stack drift detection did not check some resources"
    assert (told.stack, told.resources) == ("phoenix-sandbox", ["FleetwebSg"])


def test_a_stack_cloudformation_refuses_now_is_left_and_stops_no_other() -> None:
    cloudformation = _client()
    with Stubber(cloudformation) as stubber:
        _read(stubber, "phoenix-sandbox", [])
        stubber.add_client_error(
            "detect_stack_drift",
            "ValidationError",
            "Stack phoenix-sandbox is in UPDATE_IN_PROGRESS state",
        )
        _read(stubber, "phoenix-sandbox-fleets-1", [_drift("FleetjobsGroup", "MODIFIED",
              **_max_size("6"))])  # fmt: skip
        stubber.add_response("detect_stack_drift", {"StackDriftDetectionId": "d-2"})
        found = check_stacks(cloudformation, SPECS)
        stubber.assert_no_pending_responses()
    assert [d.found for d in found["jobs"]] == ["/MaxSize 6"]


def test_a_fleet_set_to_remediate_is_not_released_for_its_stack_s_drift() -> None:
    aws = Clients("us-east-1")
    spec = {"name": "web", "drift": "remediate", "slots": {}}
    facts = Facts("sandbox", spec, {}, {}, {}, NOW)
    drift = FleetDrift("web", "ami-0123456789abcdef0")
    drift.findings.append(
        Finding("stack resource", "", "/MaxSize 10", "/MaxSize 4", "FleetwebGroup")
    )
    with Stubber(aws.events) as events:
        events.add_response("put_events", PUT)
        check._act(aws, facts, drift)
        events.assert_no_pending_responses()
    assert drift.action == "left: a release does not put a stack resource back"


def test_with_a_releasable_finding_too_the_release_names_that_one() -> None:
    aws = Clients("us-east-1")
    spec = {"name": "web", "drift": "remediate", "slots": {}}
    facts = Facts("sandbox", spec, {}, {}, {}, NOW)
    drift = FleetDrift("web", "ami-0123456789abcdef0")
    drift.findings += [
        Finding("stack resource", "", "/MaxSize 10", "/MaxSize 4", "FleetwebGroup"),
        Finding("min size", "blue", "1", "2", "web-blue"),
    ]
    sent: list[dict[str, Any]] = []
    with Stubber(aws.events) as events:
        for _ in range(2):
            events.add_response("put_events", PUT)
        events.client.meta.events.register(
            "before-parameter-build.events.PutEvents",
            lambda params, **_: sent.extend(params["Entries"]),
        )
        check._act(aws, facts, drift)
    request = json.loads(sent[0]["Detail"])
    assert sent[0]["DetailType"] == "Release Requested"
    assert request["reason"] == "drift: blue web-blue: min size 1, expected 2 (and 1 more)"
    assert drift.action == "release of the pointer AMI requested"


def test_a_fleet_a_release_took_during_the_run_is_left_to_the_next(monkeypatch: Any) -> None:
    # Given web seen half moved: its parameters read before a release's last step, its
    # group after (another version), and the release's lock let go between the two ledger
    # reads (free at the end: only the change between them tells)
    spec = {"name": "web", "stack": "s", "slots": {"blue": {"group": "web-blue"}}}
    params = {
        "/phoenix/sandbox/web/ami": "ami-0123456789abcdef0",
        "/phoenix/sandbox/web/blue/launch-template-version": "3",
        "/phoenix/sandbox/web/blue/weight": "100",
        "/phoenix/sandbox/web/blue/min-size": "0",
    }
    reads = iter([{"web": {"lock_owner": "web-release-2"}}, {"web": {}}])
    moved = ObservedSlot(desired=0, min_size=0, launch_template_version="4", weight=100)
    monkeypatch.setattr(check, "read_registry", lambda *_: {"web": spec})
    monkeypatch.setattr(check, "read_parameters", lambda *_: params)
    monkeypatch.setattr(observed, "fleet_items", lambda *_: next(reads))
    monkeypatch.setattr(observed, "observe", lambda *_: {("web", "blue"): moved})
    monkeypatch.setattr(stacks, "check_stacks", lambda *_: {})
    settings = DriftSettings(
        environment="sandbox", service_name="phoenix-drift", table_name="ledger", region="us-east-1"
    )
    aws = Clients("us-east-1")
    with Stubber(aws.events):  # no call expected: any call raises
        assert check.check(aws, settings) == []
    # And the same seen with no release between the reads is drift
    reads = iter([{"web": {}}, {"web": {}}])
    with Stubber(aws.events) as events:
        events.add_response("put_events", PUT)
        (drift,) = check.check(aws, settings)
    assert [f.kind for f in drift.findings] == ["launch template version"]
