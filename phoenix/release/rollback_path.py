"""The release state machine's rollback path, where every Catch of definition.py leads.

`Rollback` undoes the release for its strategy. A rolling rollback starts a refresh
(RollbackInstanceRefresh, or a refresh back to the previous version) that the state
machine waits for like the forward refresh: its end event (`AwaitRollback`, a task
token) or, since EventBridge can lose or delay an event, the refresh's expected length
twice over. Either way `PollRollback` then reads the refresh itself: the event only says
that some refresh of the group ended, and only how this release's rollback refresh ended
says whether the fleet is back. The release is `rolled back` when it ended on the
previous version; a refresh still running is polled again after a Wait, a bounded number
of times; any other end (RollbackFailed, Failed, Cancelled, still running after the
last poll, or another refresh on the group) is written into the reason by
`RollbackNotDone`, and the release is recorded `failed` (`Release Failed`): the fleet is
left as it is, for the person the event pages.
"""

from __future__ import annotations

from typing import Protocol

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from phoenix.kernel.fleet_calls import ACTIVE_REFRESH_STATUSES
from phoenix.release.runtime.strategy import RefreshStillCancellingError


class StepFactory(Protocol):
    """ReleaseDefinition._step: a Lambda step with the Lambda service's retries."""

    def __call__(
        self,
        id: str,
        function: lambda_.IFunction,
        action: str,
        result_path: str,
        *,
        token: bool = False,
        timeout_path: str | None = None,
    ) -> tasks.LambdaInvoke: ...


def rollback_path(
    scope: Construct,
    step: StepFactory,
    *,
    rollback: lambda_.IFunction,
    deploy: lambda_.IFunction,
    recorded: sfn.IChainable,
    failed: sfn.IChainable,
) -> sfn.IChainable:
    """`Rollback` and, for a rolling fleet, the wait for its refresh; `recorded` closes the
    release as rolled back, `failed` as failed."""
    run = step("Rollback", rollback, "run", "$.rollback")
    run.add_retry(
        errors=[RefreshStillCancellingError.__name__],
        interval=Duration.seconds(30),
        max_attempts=6,
        backoff_rate=1.5,
    )
    # Anything else (AWS throttling or failing a call past the client's retries, the
    # function's process ending): the rollback's moves are idempotent, so it runs again
    # before the release is given up as failed with the new slot still up.
    run.add_retry(
        errors=[sfn.Errors.ALL], interval=Duration.seconds(2), max_attempts=3, backoff_rate=2
    )
    run.add_catch(failed, errors=[sfn.Errors.ALL], result_path="$.rollback_error")
    # The event's output is not kept: PollRollback reads the refresh itself.
    await_rollback = step(
        "AwaitRollback",
        deploy,
        "await",
        sfn.JsonPath.DISCARD,
        token=True,
        timeout_path="$.plan.refresh_wait_seconds",
    )
    poll = step("PollRollback", rollback, "poll", "$.rollback_refresh")
    await_rollback.add_catch(poll, errors=[sfn.Errors.TIMEOUT], result_path="$.timeout")
    for task in (await_rollback, poll):
        task.add_catch(failed, errors=[sfn.Errors.ALL], result_path="$.rollback_error")
    again = sfn.Wait(
        scope, "RollbackPollWait", time=sfn.WaitTime.seconds_path("$.plan.refresh_wait_seconds")
    )
    # The reason the ledger and `Release Failed` give: how the refresh ended, then why
    # the release was rolled back.
    not_done = sfn.Pass(
        scope,
        "RollbackNotDone",
        parameters={
            "wait": sfn.JsonPath.string_at("$.rollback.wait"),
            "action": sfn.JsonPath.string_at("$.rollback.action"),
            "refresh_id": sfn.JsonPath.string_at("$.rollback.refresh_id"),
            "reason": sfn.JsonPath.format(
                "{} (rolling back after: {})",
                sfn.JsonPath.string_at("$.rollback_refresh.summary"),
                sfn.JsonPath.string_at("$.rollback.reason"),
            ),
        },
        result_path="$.rollback",
    ).next(failed)
    running = sfn.Condition.or_(
        *[
            sfn.Condition.string_equals("$.rollback_refresh.status", s)
            for s in ACTIVE_REFRESH_STATUSES
        ]
    )
    status = (
        sfn.Choice(scope, "RollbackStatus")
        .when(sfn.Condition.boolean_equals("$.rollback_refresh.back", True), recorded)
        .when(
            sfn.Condition.and_(
                running, sfn.Condition.number_greater_than("$.rollback_refresh.polls_left", 0)
            ),
            again.next(poll),
        )
        .otherwise(not_done)
    )
    await_rollback.next(poll)
    poll.next(status)
    wait = (
        sfn.Choice(scope, "AwaitRollback?")
        .when(sfn.Condition.boolean_equals("$.rollback.wait", True), await_rollback)
        .otherwise(recorded)
    )
    return run.next(wait)
