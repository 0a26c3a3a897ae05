"""Pre-traffic tests: a fleet's hook, a Lambda function of its own, run against the new
slot's instances after they are healthy and before any traffic moves to them
(docs/release.md, Pre-traffic tests).

The hook is invoked once, synchronously, with the release, the AMI, the target group and
its healthy targets on the new AMI. It answers `{"passed": true}` or `{"passed": false,
"reason": "..."}`; anything else, an error of the function, or no answer within the
fleet's `timeout_seconds` fails the release, which the state machine rolls back with no
user traffic served. The call is never retried: a hook's tests may not be safe to run
twice.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, ReadTimeoutError

from phoenix.release.runtime.gate import on_ami, target_health
from phoenix.release.runtime.models import PreTrafficHookSpec, ReleaseState

if TYPE_CHECKING:
    from types_boto3_ec2.client import EC2Client
    from types_boto3_elbv2.client import ElasticLoadBalancingv2Client
    from types_boto3_lambda.client import LambdaClient


class PreTrafficFailedError(Exception):
    """The hook failed the new instances, failed itself, or did not answer in time."""


def target_group(state: ReleaseState) -> str:
    """The target slot's target group: the new instances the hook tests."""
    return state.fleet_spec.slots[state.need_plan().target_slot].target_group


def new_targets(
    elbv2: ElasticLoadBalancingv2Client, ec2: EC2Client, state: ReleaseState
) -> list[dict[str, Any]]:
    """The target slot's healthy targets on the release's AMI: instance id and port (the
    warm-up gate's two calls, gate.py)."""
    _, healthy = target_health(elbv2, target_group(state))
    return [{"id": i, "port": healthy[i]} for i in on_ami(ec2, list(healthy), state.ami)]


def hook_event(
    state: ReleaseState, hook: PreTrafficHookSpec, targets: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the hook is invoked with."""
    return {
        "release": state.release.id,
        "environment": state.environment,
        "fleet": state.fleet,
        "ami": state.ami,
        "target_group": target_group(state),
        "targets": targets,
        "instances": [t["id"] for t in targets],
        "input": dict(hook.input),
    }


def run_hook(lambda_: LambdaClient, hook: PreTrafficHookSpec, event: dict[str, Any]) -> str:
    """The hook's reason when it passed; PreTrafficFailedError naming why otherwise."""
    named = f"pre-traffic hook {hook.function}"
    try:
        answer = lambda_.invoke(
            FunctionName=hook.function,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
    except ReadTimeoutError as error:
        raise PreTrafficFailedError(
            f"{named} did not answer within {hook.timeout_seconds} s"
        ) from error
    except ClientError as error:
        details = error.response.get("Error", {})
        raise PreTrafficFailedError(
            f"{named} could not be invoked: {details.get('Code')}: {details.get('Message')}"
        ) from error
    body = answer["Payload"].read()
    if answer.get("FunctionError"):
        failure = _json(body)
        kind = failure.get("errorType", answer["FunctionError"])
        raise PreTrafficFailedError(f"{named} failed: {kind}: {failure.get('errorMessage', '')}")
    result = _json(body)
    if not isinstance(result.get("passed"), bool):
        shown = body[:200].decode(errors="replace")
        raise PreTrafficFailedError(f'{named} answered {shown}, not {{"passed": true|false}}')
    reason = str(result.get("reason", ""))
    if not result["passed"]:
        raise PreTrafficFailedError(f"{named} failed the new instances: {reason}")
    return reason


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
