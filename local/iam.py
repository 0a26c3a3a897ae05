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
service control policies, permissions boundaries, session policies, and the calls Step
Functions itself makes with the state machine's role.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto.autoscaling.models import autoscaling_backends
from moto.awslambda.models import lambda_backends
from moto.ec2.models import ec2_backends
from moto.iam.models import iam_backends
from moto.ssm.models import ssm_backends
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from local import ssm_image_parameters
from local.api_calls import LAMBDA_THREAD, iam_action
from local.iam_policy import Decision, Request, evaluate

ACCOUNT = "123456789012"
_JSON_PROTOCOLS = {"json", "rest-json"}


class NotEmulatedError(Exception):
    """A call the IAM emulation has no resource mapping for."""


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


def caller_of(thread_name: str, region: str) -> Caller | None:
    """The function a call comes from, by the thread it runs in (None: not a function).

    The function lives in its own Region (the AWS_REGION the Lambda runtime gives it,
    set for the call's duration by lambda_dispatch), which need not be the Region of
    the client it calls with: a disaster recovery region's trigger reads images in the
    primary."""
    if not thread_name.startswith(LAMBDA_THREAD):
        return None
    function = thread_name.removeprefix(LAMBDA_THREAD)
    home = os.environ.get("AWS_REGION") or region
    deployed = lambda_backends[ACCOUNT][home].get_function(function)
    return Caller(function, str(deployed.role), home)


# -- resources and request context, per action --------------------------------------------


def _arn(service: str, region: str, resource: str, *, account: str = ACCOUNT) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _tags(prefixes: Sequence[str], tags: Mapping[str, str]) -> dict[str, list[str]]:
    return {f"{prefix}/{key}": [value] for prefix in prefixes for key, value in tags.items()}


def _group(region: str, name: str) -> tuple[str, dict[str, list[str]]]:
    group = autoscaling_backends[ACCOUNT][region].autoscaling_groups[name]
    tags = {t["Key"]: t["Value"] for t in group.tags}
    return group.arn, _tags(("aws:ResourceTag", "autoscaling:ResourceTag"), tags)


def _template_id(region: str, spec: Mapping[str, Any]) -> str:
    ec2 = ec2_backends[ACCOUNT][region]
    if spec.get("LaunchTemplateId"):
        return str(spec["LaunchTemplateId"])
    return str(ec2.get_launch_template_by_name(spec["LaunchTemplateName"]).id)


def _parameter_arn(region: str, name: str) -> str:
    """A parameter's ARN; AWS's public parameters (`/aws/service/...`) have no account."""
    public = name.startswith("/aws/")
    return _arn("ssm", region, "parameter/" + name.lstrip("/"), account="" if public else ACCOUNT)


def _ec2_resource_arn(region: str, resource_id: str) -> str:
    kinds = {
        "ami": ("image", ""),
        "snap": ("snapshot", ""),
        "i": ("instance", ACCOUNT),
        "vol": ("volume", ACCOUNT),
        "lt": ("launch-template", ACCOUNT),
    }
    prefix = resource_id.split("-", 1)[0]
    if prefix not in kinds:
        raise NotEmulatedError(f"ec2 resource id {resource_id}")
    kind, account = kinds[prefix]
    return _arn("ec2", region, f"{kind}/{resource_id}", account=account)


def _execution_of_token(region: str, token: str) -> str | None:
    """The state machine whose running execution waits for `token`."""
    backend = stepfunctions_parser_backends[ACCOUNT][region]
    for machine in backend.state_machines:
        for execution in machine.executions:
            worker = getattr(execution, "exec_worker", None)
            if worker is not None and worker.env.callback_pool_manager.get(token) is not None:
                return str(machine.arn)
    return None


Params = Mapping[str, Any]
_UNSCOPED = {"cloudwatch:GetMetricData"}  # actions without resource-level permissions


def _alarms(action: str, params: Params, region: str) -> Iterator[Request]:
    for name in params.get("AlarmNames") or []:
        yield Request(action, _arn("cloudwatch", region, f"alarm:{name}"))
    if not params.get("AlarmNames"):
        yield Request(action, "*")


def _table(action: str, params: Params, region: str) -> Iterator[Request]:
    yield Request(action, _arn("dynamodb", region, f"table/{params['TableName']}"))


def _parameters(action: str, params: Params, region: str) -> Iterator[Request]:
    for name in params.get("Names") or [params["Name"]]:
        yield Request(action, _parameter_arn(region, name))


def _path(action: str, params: Params, region: str) -> Iterator[Request]:
    """GetParametersByPath is authorized against the path asked for, not the parameters it
    returns (AWS Systems Manager User Guide, "How Parameter Store authorizes parameter
    retrieval")."""
    yield Request(action, _parameter_arn(region, str(params["Path"])))


def _auto_scaling_group(action: str, params: Params, region: str) -> Iterator[Request]:
    arn, context = _group(region, params["AutoScalingGroupName"])
    yield Request(action, arn, context)


def _launch_template(action: str, params: Params, region: str) -> Iterator[Request]:
    template = _template_id(region, params)
    yield Request(action, _arn("ec2", region, f"launch-template/{template}"))


def _tagging(action: str, params: Params, region: str) -> Iterator[Request]:
    tags = {t["Key"]: t.get("Value", "") for t in params["Tags"]}
    context = {**_tags(("aws:RequestTag",), tags), "aws:TagKeys": list(tags)}
    for resource in params["Resources"]:
        yield Request(action, _ec2_resource_arn(region, resource), context)


def _events(action: str, params: Params, region: str) -> Iterator[Request]:
    for entry in params["Entries"]:
        bus = entry.get("EventBusName") or "default"
        arn = bus if bus.startswith("arn:") else _arn("events", region, f"event-bus/{bus}")
        context = {
            "events:source": [entry.get("Source", "")],
            "events:detail-type": [entry.get("DetailType", "")],
        }
        yield Request(action, arn, context)


def _task_response(action: str, params: Params, region: str) -> Iterator[Request]:
    yield Request(action, _execution_of_token(region, str(params["taskToken"])) or "*")


def _named_by(parameter: str) -> Callable[[str, Params, str], Iterator[Request]]:
    def named(action: str, params: Params, _region: str) -> Iterator[Request]:
        yield Request(action, str(params[parameter]))

    return named


_RESOURCES: dict[str, Callable[[str, Params, str], Iterator[Request]]] = {
    "cloudwatch:DescribeAlarms": _alarms,
    "dynamodb:GetItem": _table,
    "dynamodb:PutItem": _table,
    "dynamodb:UpdateItem": _table,
    "ssm:GetParameter": _parameters,
    "ssm:GetParameters": _parameters,
    "ssm:GetParametersByPath": _path,
    "ssm:PutParameter": _parameters,
    "ssm:DeleteParameter": _parameters,
    "autoscaling:UpdateAutoScalingGroup": _auto_scaling_group,
    "autoscaling:StartInstanceRefresh": _auto_scaling_group,
    "autoscaling:CancelInstanceRefresh": _auto_scaling_group,
    "autoscaling:RollbackInstanceRefresh": _auto_scaling_group,
    "ec2:CreateLaunchTemplateVersion": _launch_template,
    "ec2:CreateTags": _tagging,
    "ec2:DeleteTags": _tagging,  # the same resource types and tag condition keys (SAR)
    "elasticloadbalancing:ModifyListener": _named_by("ListenerArn"),
    "events:PutEvents": _events,
    "states:StartExecution": _named_by("stateMachineArn"),
    "states:StopExecution": _named_by("executionArn"),
    "states:SendTaskSuccess": _task_response,
    "states:SendTaskFailure": _task_response,
    "imagebuilder:GetImage": _named_by("imageBuildVersionArn"),
}


def requests_for(action: str, params: Params, region: str) -> Iterator[Request]:
    """The authorizations `action` with `params` needs, as AWS evaluates them."""
    if action in _RESOURCES:
        yield from _RESOURCES[action](action, params, region)
    elif action.split(":")[1].startswith("Describe") or action in _UNSCOPED:
        yield Request(action, "*")
    else:
        raise NotEmulatedError(f"no resource mapping for {action}")


def implicit_requests(action: str, params: Mapping[str, Any], region: str) -> Iterator[Request]:
    """What AWS checks besides the action itself (see the module docstring)."""
    template: Mapping[str, Any] | None = None
    if action == "autoscaling:UpdateAutoScalingGroup":
        template = params.get("LaunchTemplate")
    elif action == "autoscaling:StartInstanceRefresh":
        template = params.get("DesiredConfiguration", {}).get("LaunchTemplate")
    if template:
        yield from _launch_template_use(region, template)
    if action == "ssm:PutParameter":
        backend = ssm_backends[ACCOUNT][region]
        if ssm_image_parameters.is_image_parameter(backend, params["Name"], params.get("DataType")):
            yield Request("ec2:DescribeImages", "*")


def _launch_template_use(region: str, spec: Mapping[str, Any]) -> Iterator[Request]:
    ec2 = ec2_backends[ACCOUNT][region]
    template_id = _template_id(region, spec)
    template = ec2.get_launch_template(template_id)
    version_spec = str(spec.get("Version") or "$Default")
    version = template.get_version(
        {
            "$Latest": template.latest_version_number,
            "$Default": template.default_version_number,
        }.get(version_spec, version_spec)
    )
    data = version.data
    template_arn = _arn("ec2", region, f"launch-template/{template_id}")
    launch = {"ec2:LaunchTemplate": [template_arn]}
    for kind in ("instance", "volume", "network-interface", "security-group", "subnet"):
        yield Request("ec2:RunInstances", _arn("ec2", region, f"{kind}/*"), launch)
    if data.get("ImageId"):
        yield Request(
            "ec2:RunInstances", _arn("ec2", region, f"image/{data['ImageId']}", account=""), launch
        )
    profile = data.get("IamInstanceProfile") or {}
    for role_arn in _profile_roles(profile):
        yield Request("iam:PassRole", role_arn, {"iam:PassedToService": ["ec2.amazonaws.com"]})
    for spec_ in data.get("TagSpecifications") or []:
        kind = spec_.get("ResourceType")
        if kind not in ("instance", "volume"):
            continue
        tags = {t["Key"]: t.get("Value", "") for t in spec_.get("Tags", [])}
        context = {
            **_tags(("aws:RequestTag",), tags),
            "aws:TagKeys": list(tags),
            "ec2:CreateAction": ["RunInstances"],
        }
        yield Request("ec2:CreateTags", _arn("ec2", region, f"{kind}/*"), context)


def _profile_roles(profile: Mapping[str, Any]) -> list[str]:
    iam = iam_backends[ACCOUNT]["global"]
    for candidate in iam.get_instance_profiles():
        if profile.get("Arn") == candidate.arn or profile.get("Name") == candidate.name:
            return [role.arn for role in candidate.roles]
    return []


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
        "ResponseMetadata": {"HTTPStatusCode": 403},
    }
    return ClientError(response, model.name)


def authorize(params: Mapping[str, Any], model: Any, context: Mapping[str, Any], **_: Any) -> None:
    """botocore `before-parameter-build` hook: refuse what the caller's role may not do."""
    region = str(context.get("client_region") or "us-east-1")
    caller = caller_of(threading.current_thread().name, region)
    if caller is None:
        return
    action = iam_action(model)
    policies = role_policies(caller.role_arn)
    for request in requests_for(action, params, region):
        if evaluate(policies, request) is not Decision.ALLOWED:
            raise _refusal(model, caller, request, implicit_of=None)
    for request in implicit_requests(action, params, region):
        if evaluate(policies, request) is Decision.ALLOWED:
            continue
        if request.action == "ec2:DescribeImages":
            # Not refused: the asynchronous validation fails and the parameter is not
            # written (ssm_image_parameters).
            ssm_image_parameters.refuse(region, str(params["Name"]), str(params["Value"]))
            continue
        raise _refusal(model, caller, request, implicit_of=action)


def install() -> None:
    """Authorize every call of phoenix's handlers on boto3's default session (again
    whenever it was replaced: registering twice under one id is a no-op)."""
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("before-parameter-build", authorize, unique_id="phoenix-iam")
