"""IAM enforced in the embedded AWS: each handler calls AWS with its function's role.

A phoenix handler runs in a thread named `lambda:<function name>` (lambda_dispatch); a
CDK `AwsCustomResource` call runs in a thread named after its provider function
(cloudformation_resources). Before botocore builds such a call's request, this module
authorizes it as AWS would, with local.iam_policy's evaluator, against the role of that
function as deployed (its inline and managed policies, read from moto's IAM):
- the action on each resource the call names, with the resource ARN formats and the
  condition keys of the Service Authorization Reference ("Actions, resources, and
  condition keys for AWS services"): for example `autoscaling:UpdateAutoScalingGroup`
  on the group's ARN with `aws:ResourceTag/<key>` and `autoscaling:ResourceTag/<key>`
  from the group's tags; actions without resource-level permissions on `*`;
- what AWS checks implicitly for the call:
  - UpdateAutoScalingGroup and StartInstanceRefresh with a launch template (Amazon EC2
    Auto Scaling User Guide, "Amazon EC2 Auto Scaling API permissions", required
    permissions from other APIs; "Control Amazon EC2 launch template usage in Auto
    Scaling groups"): `ec2:RunInstances` with `ec2:LaunchTemplate`, `iam:PassRole` for
    the template's instance profile role (`iam:PassedToService` ec2.amazonaws.com), and
    `ec2:CreateTags` on the instance and volume with `ec2:CreateAction` RunInstances when
    the template version tags them on launch. A refusal is AccessDenied, "You are not
    authorized to use launch template";
  - DetectStackDrift reads each resource with the caller's credentials: a resource whose
    read permissions the role lacks is left out of the detection (local.stack_drift);
  - PutParameter of an `aws:ec2:image` parameter needs `ec2:DescribeImages` (AWS Systems
    Manager User Guide, "Native parameter support for Amazon Machine Image IDs"): see
    ssm_image_parameters for what happens when it fails;
- SendTaskSuccess is authorized on the state machine of the execution waiting for the
  token: the Service Authorization Reference lists no resource type for it, yet AWS
  refuses it "on resource: arn:aws:states:...:stateMachine:..." and a grant on the state
  machine's ARN is what the Step Functions task-token examples use (a `*` grant matches
  either way).
A refused call raises the error AWS answers (AccessDenied, UnauthorizedOperation for EC2,
AccessDeniedException for JSON services) with AWS's message, before anything is sent.

A call whose action this module has no resource mapping for is refused with
`NotEmulated`: the oracle never guesses an ARN. Not emulated: resource-based policies
(key policies: DynamoDB's and SNS's use of the environment key is not checked here),
service control policies, permissions boundaries and session policies.
"""

from __future__ import annotations

import os
import threading
import types
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto.awslambda.models import lambda_backends
from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends
from moto.stepfunctions.parser.asl.component.program import program
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
    inline_iteration_component,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branch_worker
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback,
)
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.utils import TMP_THREADS

from local import ssm_image_parameters, stack_drift
from local.api_calls import LAMBDA_THREAD, iam_action
from local.iam_policy import Decision, Request, evaluate
from local.iam_requests import implicit_requests, requests_for

ACCOUNT = "123456789012"
STATES_THREAD = "states:"
_JSON_PROTOCOLS = {"json", "rest-json"}


@dataclass(frozen=True)
class Caller:
    function: str
    role_arn: str
    region: str

    @property
    def session_arn(self) -> str:
        role_name = self.role_arn.rsplit("/", 1)[-1]
        return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{self.function}"


def role_policies(role_arn: str) -> list[str]:
    """The identity-based policies of a role as deployed: inline and managed."""
    role = iam_backends[ACCOUNT]["global"].get_role_by_arn(role_arn)
    documents = list(role.policies.values())
    for policy in role.managed_policies.values():
        (version,) = [v for v in policy.versions if v.version_id == policy.default_version_id]
        documents.append(version.document)
    return documents


_world = threading.local()


@contextmanager
def the_world_moving() -> Iterator[None]:
    """The embedded AWS's own work (simulated time passing: refreshes, traffic, alarms,
    schedules, retries) in whatever thread moves the clock: an execution's Wait state
    moves it too, yet what the world then does is not the execution's call."""
    before = getattr(_world, "moving", False)
    _world.moving = True
    try:
        yield
    finally:
        _world.moving = before


def caller_of(thread_name: str, region: str) -> Caller | None:
    """The function (or state machine) a call comes from, by the thread it runs in (None:
    neither). A state machine's execution runs in a thread named after its state machine
    and its role (`execution_threads`): its Task states' calls (AWS SDK and optimized
    integrations, a Lambda function's invocation) are made with that role, as Step
    Functions makes them ("How Step Functions works with IAM", developer guide).

    The function lives in its own Region (the AWS_REGION the Lambda runtime gives it,
    set for the call's duration by lambda_dispatch), which need not be the Region of
    the client it calls with: a disaster recovery region's trigger reads images in the
    primary."""
    if getattr(_world, "moving", False):
        return None
    if thread_name.startswith(STATES_THREAD):
        machine, role = thread_name.removeprefix(STATES_THREAD).split(" ", 1)
        return Caller(machine.rsplit(":", 1)[-1], role, machine.split(":")[3])
    if not thread_name.startswith(LAMBDA_THREAD):
        return None
    function = thread_name.removeprefix(LAMBDA_THREAD)
    home = os.environ.get("AWS_REGION") or region
    deployed = lambda_backends[ACCOUNT][home].get_function(function)
    return Caller(function, str(deployed.role), home)


# -- the hook ---------------------------------------------------------------------------


def _refusal(
    model: Any, caller: Caller, request: Request, *, implicit_of: str | None
) -> ClientError:
    protocol = model.service_model.protocol
    if model.service_model.signing_name == "ec2":
        code = "UnauthorizedOperation"
    elif protocol in _JSON_PROTOCOLS:
        code = "AccessDeniedException"
    else:
        code = "AccessDenied"
    if implicit_of and request.action != "ec2:DescribeImages":
        message = (
            "You are not authorized to use launch template: "
            f"{caller.session_arn} is not authorized to perform: {request.action} "
            f"on resource: {request.resource}"
        )
    else:
        message = (
            f"User: {caller.session_arn} is not authorized to perform: {request.action} "
            f"on resource: {request.resource} because no identity-based policy allows "
            f"the {request.action} action"
        )
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": 403, "RequestId": str(uuid.uuid4())},
    }
    return ClientError(response, model.name)


def authorize(params: Mapping[str, Any], model: Any, context: Mapping[str, Any], **_: Any) -> None:
    """botocore `before-parameter-build` hook: refuse what the caller's role may not do."""
    region = str(context.get("client_region") or "us-east-1")
    caller = caller_of(threading.current_thread().name, region)
    if caller is None:
        return
    action = iam_action(model)
    try:
        policies = role_policies(caller.role_arn)
    except NotFoundException:
        # A state machine's definition run in moto alone, with a made-up role: AWS would
        # not have created it (CreateStateMachine checks that Step Functions may assume
        # its role), so there is no role to authorize its calls with.
        return
    for request in requests_for(action, params, region):
        if evaluate(policies, request) is not Decision.ALLOWED:
            raise _refusal(model, caller, request, implicit_of=None)
    if action == "cloudformation:DetectStackDrift":
        # CloudFormation reads each resource with the caller's credentials
        stack_drift.authorize_reads(
            region, params, lambda read: evaluate(policies, read) is Decision.ALLOWED
        )
    for request in implicit_requests(action, params, region):
        if evaluate(policies, request) is Decision.ALLOWED:
            continue
        if request.action == "ec2:DescribeImages":
            # Not refused: the asynchronous validation fails and the parameter is not
            # written (ssm_image_parameters).
            ssm_image_parameters.refuse(region, str(params["Name"]), str(params["Value"]))
            continue
        raise _refusal(model, caller, request, implicit_of=action)


class _ExecutionThread(threading.Thread):
    """A thread an execution starts (a task, a branch, an iteration, a token wait): named
    as the thread that starts it, so its calls are made with the execution's role."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        parent = threading.current_thread().name
        if parent.startswith(STATES_THREAD):
            kwargs["name"] = parent
        super().__init__(*args, **kwargs)


def execution_threads() -> None:
    """Run each execution of a state machine in threads named after the state machine and
    its role (moto's name them `Thread-N`), so its calls are authorized with that role."""

    def start(self: ExecutionWorker) -> None:
        details = self._evaluation_details
        name = (
            f"{STATES_THREAD}{details.state_machine_details.arn} "
            f"{details.execution_details.role_arn}"
        )
        thread = threading.Thread(target=self._execution_logic, daemon=True, name=name)
        TMP_THREADS.append(thread)
        thread.start()

    ExecutionWorker.start = start  # type: ignore[method-assign]
    inheriting = types.ModuleType("threading")
    inheriting.__dict__.update(threading.__dict__)
    inheriting.Thread = _ExecutionThread  # type: ignore[attr-defined]
    for module in (program, inline_iteration_component, state_task_service_callback, branch_worker):
        module.threading = inheriting  # type: ignore[attr-defined]
    execute_state.Thread = _ExecutionThread  # type: ignore[misc]


def install() -> None:
    """Authorize every call of phoenix's handlers on boto3's default session (again
    whenever it was replaced: registering twice under one id is a no-op)."""
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("before-parameter-build", authorize, unique_id="phoenix-iam")
    session.events.register(
        "before-sign.cloudformation.DetectStackDrift",
        stack_drift.carry_reads,
        unique_id="phoenix-drift-reads",
    )
    execution_threads()
