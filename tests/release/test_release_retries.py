"""What a release step survives: the Lambda service's retryable errors (the definition), a
retried refresh step after its refresh started, and telemetry that fails (Stubber)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from docs.diagram import state_machine_definition
from phoenix.release.handlers.deploy import handle as deploy
from phoenix.release.handlers.prepare import handle as prepare
from tests.conftest import SynthesizedApp
from tests.release.release_state import (
    AMI,
    GROUPS,
    RELEASE_ID,
    SETTINGS,
    SOURCE_VERSION,
    STARTED_AT,
    TEMPLATES,
    TOKEN,
    VERSION,
    StubbedAws,
    expect_event,
    expect_token_stored,
    release_state,
    step_input,
)

# "Best practices: handle Lambda service exceptions" (Step Functions developer guide).
LAMBDA_RETRYABLE = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


# --- the definition -----------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["sandbox", "production"])
def test_every_lambda_step_retries_what_aws_says_is_retryable(
    synthesized: SynthesizedApp, environment: str
) -> None:
    definition = state_machine_definition(synthesized.template(f"phoenix-{environment}"))
    lambda_steps = {
        name: state
        for name, state in definition["States"].items()
        if state["Type"] == "Task" and ":states:::aws-sdk:" not in state["Resource"]
    }
    assert len(lambda_steps) == 20
    for name, state in lambda_steps.items():
        retried = {error for retry in state.get("Retry", []) for error in retry["ErrorEquals"]}
        assert retried >= LAMBDA_RETRYABLE, f"{name} does not retry {LAMBDA_RETRYABLE - retried}"


def test_every_lambda_step_of_a_plan_retries_what_aws_says_is_retryable(
    synthesized: SynthesizedApp,
) -> None:
    definition = state_machine_definition(
        synthesized.template("phoenix-production"), "PlansStateMachinegolden"
    )
    states = dict(definition["States"])
    for state in definition["States"].values():  # the Distributed Map's item processor
        states.update(state.get("ItemProcessor", {}).get("States", {}))
    lambda_steps = {
        name: state
        for name, state in states.items()
        if state["Type"] == "Task" and ":states:::states:" not in state["Resource"]
    }
    assert sorted(lambda_steps) == [
        "CheckRemoteRelease",
        "CountRequests",
        "Halt",
        "MarkFailed",
        "MayStart",
        "RecordAbandoned",
        "RecordFailed",
        "RecordSucceeded",
        "Start",
        "StartRemoteRelease",
        "WaveOutcome",
        "Window",
    ]
    for name, state in lambda_steps.items():
        retried = {error for retry in state.get("Retry", []) for error in retry["ErrorEquals"]}
        assert retried >= LAMBDA_RETRYABLE, f"{name} does not retry {LAMBDA_RETRYABLE - retried}"


# --- the refresh step, retried ------------------------------------------------------------


def _refresh_in_progress(aws: StubbedAws) -> None:
    aws.autoscaling.add_client_error(
        "start_instance_refresh",
        service_error_code="InstanceRefreshInProgress",
        service_message="An Instance Refresh is already in progress and blocks the execution",
        http_status_code=400,
    )


def _latest(aws: StubbedAws, *, started: timedelta, version: int) -> None:
    refresh = {
        "InstanceRefreshId": "r-0099",
        "AutoScalingGroupName": GROUPS["blue"],
        "Status": "InProgress",
        "StartTime": STARTED_AT + started,
        "DesiredConfiguration": {
            "LaunchTemplate": {"LaunchTemplateId": TEMPLATES["blue"], "Version": str(version)}
        },
    }
    aws.autoscaling.add_response(
        "describe_instance_refreshes",
        {"InstanceRefreshes": [refresh]},
        {"AutoScalingGroupName": GROUPS["blue"], "MaxRecords": 1},
    )


def test_a_retried_refresh_step_carries_on_with_the_refresh_it_started(aws: StubbedAws) -> None:
    # Given this release's refresh to version 8 already running (the first attempt started it)
    expect_token_stored(aws)
    _refresh_in_progress(aws)
    _latest(aws, started=timedelta(minutes=4), version=VERSION)

    # When the refresh step runs again
    result = deploy(step_input(release_state("rolling"), "refresh", TOKEN), SETTINGS, aws.clients)

    # Then it waits for that refresh with its new token and records nothing twice
    assert result is None
    assert aws.calls == [
        "dynamodb.UpdateItem",
        "autoscaling.StartInstanceRefresh",
        "autoscaling.DescribeInstanceRefreshes",
    ]


@pytest.mark.parametrize(
    ("started", "version"),
    [(timedelta(minutes=-30), VERSION), (timedelta(minutes=4), SOURCE_VERSION)],
    ids=["started-before-this-release", "to-another-version"],
)
def test_a_refresh_in_progress_that_is_not_this_releases_fails_the_step(
    aws: StubbedAws, started: timedelta, version: int
) -> None:
    expect_token_stored(aws)
    _refresh_in_progress(aws)
    _latest(aws, started=started, version=version)
    with pytest.raises(ClientError, match="InstanceRefreshInProgress"):
        deploy(step_input(release_state("rolling"), "refresh", TOKEN), SETTINGS, aws.clients)


# --- telemetry, best effort ---------------------------------------------------------------


def _expect_version_created(aws: StubbedAws) -> None:
    aws.ec2.add_response(
        "create_launch_template_version",
        {"LaunchTemplateVersion": {"LaunchTemplateId": TEMPLATES["blue"], "VersionNumber": 8}},
        {
            "LaunchTemplateId": TEMPLATES["blue"],
            "SourceVersion": str(SOURCE_VERSION),
            "VersionDescription": f"phoenix release {RELEASE_ID}",
            "LaunchTemplateData": {"ImageId": AMI},
        },
    )


def _expect_ledger_step(aws: StubbedAws) -> None:
    aws.dynamodb.add_response(
        "update_item", {"Attributes": {"last_step_at": {"S": "2026-11-25T09:04:00.000000Z"}}}
    )


def _prepared(aws: StubbedAws) -> Any:
    state = release_state("rolling", prepared=False)
    return prepare(step_input(state), SETTINGS, aws.clients)


def test_a_step_completes_when_putevents_fails(
    aws: StubbedAws, caplog: pytest.LogCaptureFixture
) -> None:
    # Given EventBridge refusing the call (after botocore's own retries)
    _expect_version_created(aws)
    _expect_ledger_step(aws)
    aws.events.add_client_error(
        "put_events", service_error_code="ThrottlingException", http_status_code=400
    )

    # When the step records itself, Then it completes all the same, with a warning
    assert _prepared(aws) == {"version": 8}
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage() for r in warnings] == ["step event not sent"]


def test_a_step_completes_when_eventbridge_does_not_accept_the_event(aws: StubbedAws) -> None:
    _expect_version_created(aws)
    _expect_ledger_step(aws)
    aws.events.add_response(
        "put_events",
        {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]},
    )
    assert _prepared(aws) == {"version": 8}


def test_a_step_completes_when_its_ledger_step_write_fails(aws: StubbedAws) -> None:
    # Given the ledger refusing the step's record, Then the event still goes out
    _expect_version_created(aws)
    aws.dynamodb.add_client_error(
        "update_item", service_error_code="ProvisionedThroughputExceededException"
    )
    expect_event(aws, "Release Step Completed", step="launch template version created")
    assert _prepared(aws) == {"version": 8}
