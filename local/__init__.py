"""The embedded AWS: moto plus what phoenix needs that moto lacks (see docs/rehearsal.md)."""

from __future__ import annotations

from moto.core.config import default_user_config

from local import (
    alarm_evaluation,
    alarm_events,
    api_calls,
    api_gaps,
    application,
    cfn_events,
    cfn_properties,
    clock,
    cloudformation,
    dynamodb_writes,
    event_patterns,
    eventbridge,
    faults,
    iam,
    imagebuilder,
    instance_refresh,
    lambda_dispatch,
    memo,
    run_command,
    run_instances,
    scheduler,
    sfn_events,
    shared_images,
    ssm_image_parameters,
    stack_drift,
)


def install_extensions(endpoint: str | None = None) -> None:
    """Apply every extension to moto in this process; `endpoint` is the server's URL.

    Also sets moto to run state machines with its ASL interpreter. (moto's Lambda keeps
    its Docker setting: its no-Docker mode answers from a canned queue and never reaches
    phoenix's handlers; only CDK's own providers would want Docker, and those run here.)
    """
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    memo.install()
    dynamodb_writes.install()
    imagebuilder.install()  # first: its CloudFormation models must exist before the caches clear
    scheduler.install()
    cloudformation.install(endpoint)
    cfn_events.install()
    lambda_dispatch.install()
    eventbridge.install()
    event_patterns.install()
    alarm_events.install()
    alarm_evaluation.install()
    instance_refresh.install()
    application.install()
    run_command.install()
    run_instances.install()
    stack_drift.install()
    cfn_properties.install()
    api_gaps.install()
    ssm_image_parameters.install()
    shared_images.install()
    iam.install()
    # Before any client is made (phoenix's handlers keep theirs): the call log and the
    # faults hook into the session once.
    api_calls.install()
    faults.install()
    clock.install(endpoint)
    sfn_events.install()  # after clock: StopExecution's ABORTED is published at once
