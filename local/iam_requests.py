"""What an AWS call asks IAM for, as AWS evaluates it: the action on each resource the
call names (ARN formats and condition keys from the Service Authorization Reference), with
the resource's tags where the reference lists `aws:ResourceTag/<key>` for it, and what AWS
checks implicitly for the call. local.iam evaluates these against the caller's role; its
docstring lists the AWS documentation each behaviour follows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from moto.autoscaling.models import autoscaling_backends
from moto.awslambda.exceptions import UnknownFunctionException
from moto.awslambda.models import lambda_backends
from moto.cloudformation.exceptions import ValidationError as CloudFormationValidationError
from moto.cloudformation.models import cloudformation_backends
from moto.ec2.models import ec2_backends
from moto.elbv2.models import elbv2_backends
from moto.iam.models import iam_backends
from moto.ssm.models import ssm_backends
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from local import ssm_image_parameters
from local.iam_policy import Request

ACCOUNT = "123456789012"


class NotEmulatedError(Exception):
    """A call the IAM emulation has no resource mapping for."""


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
# actions without resource-level permissions (Service Authorization Reference)
_UNSCOPED = {
    "cloudwatch:GetMetricData",
    "ssm:GetCommandInvocation",
    "ssm:ListCommandInvocations",
    # no resource type (Service Authorization Reference, EC2 Image Builder)
    "imagebuilder:ListImageScanFindings",
}


def _alarms(action: str, params: Params, region: str) -> Iterator[Request]:
    for name in params.get("AlarmNames") or []:
        yield Request(action, _arn("cloudwatch", region, f"alarm:{name}"))
    if not params.get("AlarmNames"):
        yield Request(action, "*")


def _table(action: str, params: Params, region: str) -> Iterator[Request]:
    yield Request(action, _arn("dynamodb", region, f"table/{params['TableName']}"))


def _tables(action: str, params: Params, region: str) -> Iterator[Request]:
    """BatchGetItem: each table it reads (Service Authorization Reference, Amazon DynamoDB:
    BatchGetItem, resource type table; the API reference: "you must have permissions on
    every table")."""
    for table in sorted(params.get("RequestItems") or {}):
        yield Request(action, _arn("dynamodb", region, f"table/{table}"))


def _query(action: str, params: Params, region: str) -> Iterator[Request]:
    """Query's resource is the table, or the index it reads (Service Authorization
    Reference, Amazon DynamoDB: Query, resource types table and index)."""
    index = f"/index/{params['IndexName']}" if params.get("IndexName") else ""
    yield Request(action, _arn("dynamodb", region, f"table/{params['TableName']}{index}"))


def _grant(action: str, params: Params, _region: str) -> Iterator[Request]:
    """CreateGrant on the key (its ARN: another account's key is named by ARN only),
    with the grantee and operations as condition keys (Service Authorization Reference,
    AWS KMS: CreateGrant, kms:GranteePrincipal, kms:GrantOperations)."""
    context = {
        "kms:GranteePrincipal": [str(params["GranteePrincipal"])],
        "kms:GrantOperations": [str(o) for o in params.get("Operations") or []],
    }
    yield Request(action, str(params["KeyId"]), context)


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


def _template_tags(region: str, template_id: str) -> dict[str, list[str]]:
    """A launch template's tags as `aws:ResourceTag/<key>` and `ec2:ResourceTag/<key>`."""
    found = ec2_backends[ACCOUNT][region].describe_tags(filters={"resource-id": [template_id]})
    tags = {t["key"]: t["value"] for t in found}
    return _tags(("aws:ResourceTag", "ec2:ResourceTag"), tags)


def _launch_template(action: str, params: Params, region: str) -> Iterator[Request]:
    template = _template_id(region, params)
    arn = _arn("ec2", region, f"launch-template/{template}")
    yield Request(action, arn, _template_tags(region, template))


def _run_instances(_action: str, params: Params, region: str) -> Iterator[Request]:
    """RunInstances from a launch template (the only way phoenix calls it): what using the
    template asks (below), with the request's AMI, subnet and tags on launch in place of
    the template's. Without a template it is not emulated."""
    if not params.get("LaunchTemplate"):
        raise NotEmulatedError("ec2:RunInstances without a launch template")
    yield from _launch_template_use(region, params["LaunchTemplate"], params)


def _instances(action: str, params: Params, region: str) -> Iterator[Request]:
    """Instances by ID, with their tags (`aws:ResourceTag`, `ec2:ResourceTag`)."""
    ec2 = ec2_backends[ACCOUNT][region]
    for instance in params["InstanceIds"]:
        found = ec2.describe_tags(filters={"resource-id": [instance]})
        tags = _tags(("aws:ResourceTag", "ec2:ResourceTag"), {t["key"]: t["value"] for t in found})
        yield Request(action, _ec2_resource_arn(region, instance), tags)


def _listener(action: str, params: Params, region: str) -> Iterator[Request]:
    """A listener, with its tags (`aws:ResourceTag`, `elasticloadbalancing:ResourceTag`)."""
    arn = str(params["ListenerArn"])
    tags = elbv2_backends[ACCOUNT][region].tagging_service.get_tag_dict_for_resource(arn)
    yield Request(action, arn, _tags(("aws:ResourceTag", "elasticloadbalancing:ResourceTag"), tags))


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


def _function(action: str, params: Params, region: str) -> Iterator[Request]:
    """Invoke is authorized as `lambda:InvokeFunction` on the function's ARN, with its
    tags as `aws:ResourceTag/<key>` (Service Authorization Reference, AWS Lambda);
    FunctionName is a name or an ARN. A function that does not exist is asked for by
    the ARN its name makes, with no tags."""
    name = str(params["FunctionName"])
    arn = name if name.startswith("arn:") else _arn("lambda", region, f"function:{name}")
    try:
        function = lambda_backends[ACCOUNT][region].get_function(name)
    except UnknownFunctionException:  # Invoke answers that, once authorized
        yield Request(action, arn)
        return
    tags = dict(getattr(function, "tags", None) or {})
    yield Request(action, arn, _tags(("aws:ResourceTag",), tags))


def _send_command(action: str, params: Params, region: str) -> Iterator[Request]:
    """SendCommand on the document (an AWS-owned one has no account in its ARN) and on
    each instance, with the instance's tags as `aws:ResourceTag/<key>` and
    `ssm:resourceTag/<key>` (Service Authorization Reference, AWS Systems Manager)."""
    document = str(params["DocumentName"])
    owner = "" if document.startswith("AWS-") else ACCOUNT
    yield Request(action, _arn("ssm", region, f"document/{document}", account=owner))
    ec2 = ec2_backends[ACCOUNT][region]
    for instance in params.get("InstanceIds") or []:
        found = ec2.describe_tags(filters={"resource-id": [instance]})
        tags = {t["key"]: t["value"] for t in found}
        context = _tags(("aws:ResourceTag", "ssm:resourceTag"), tags)
        yield Request(action, _arn("ec2", region, f"instance/{instance}"), context)


def _stack(action: str, params: Params, region: str) -> Iterator[Request]:
    """A stack's drift calls are authorized on the stack (Service Authorization Reference,
    AWS CloudFormation: DetectStackDrift and DescribeStackResourceDrifts, resource type
    stack, `arn:...:stack/<name>/<id>`)."""
    name = str(params["StackName"])
    try:
        stack_id = str(cloudformation_backends[ACCOUNT][region].get_stack(name).stack_id)
    except CloudFormationValidationError:  # no such stack: the service says so, if allowed
        named = _arn("cloudformation", region, f"stack/{name}/*")
        stack_id = name if name.startswith("arn:") else named
    yield Request(action, stack_id)


def _named_by(parameter: str) -> Callable[[str, Params, str], Iterator[Request]]:
    def named(action: str, params: Params, _region: str) -> Iterator[Request]:
        yield Request(action, str(params[parameter]))

    return named


_RESOURCES: dict[str, Callable[[str, Params, str], Iterator[Request]]] = {
    "cloudwatch:DescribeAlarms": _alarms,
    "dynamodb:GetItem": _table,
    "dynamodb:PutItem": _table,
    "dynamodb:UpdateItem": _table,
    "dynamodb:Query": _query,
    "dynamodb:BatchGetItem": _tables,
    "kms:CreateGrant": _grant,
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
    "ec2:RunInstances": _run_instances,
    "ec2:TerminateInstances": _instances,
    "ec2:CreateTags": _tagging,
    "ec2:DeleteTags": _tagging,  # the same resource types and tag condition keys (SAR)
    "elasticloadbalancing:ModifyListener": _listener,
    "events:PutEvents": _events,
    "states:StartExecution": _named_by("stateMachineArn"),
    "states:StopExecution": _named_by("executionArn"),
    # DescribeExecution's resource type is the execution (Service Authorization Reference).
    "states:DescribeExecution": _named_by("executionArn"),
    "states:SendTaskSuccess": _task_response,
    "states:SendTaskFailure": _task_response,
    "imagebuilder:GetImage": _named_by("imageBuildVersionArn"),
    "imagebuilder:StartImagePipelineExecution": _named_by("imagePipelineArn"),
    "lambda:InvokeFunction": _function,
    "ssm:SendCommand": _send_command,
    "cloudformation:DetectStackDrift": _stack,
    "cloudformation:DescribeStackResourceDrifts": _stack,
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


def _launch_template_use(
    region: str, spec: Mapping[str, Any], launch: Params | None = None
) -> Iterator[Request]:
    """Using a launch template (`spec`); `launch`: a RunInstances request's own values."""
    request = launch or {}
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
    data = {**version.data, **{k: request[k] for k in ("ImageId",) if request.get(k)}}
    template_arn = _arn("ec2", region, f"launch-template/{template_id}")
    launch = {"ec2:LaunchTemplate": [template_arn]}
    # RunInstances is authorized on the launch template too, with its tags (Service
    # Authorization Reference, Amazon EC2: RunInstances, resource type launch-template).
    yield Request("ec2:RunInstances", template_arn, launch | _template_tags(region, template_id))
    named = request.get("SubnetId") or next(
        (n.get("SubnetId") for n in request.get("NetworkInterfaces", []) if n.get("SubnetId")), None
    )
    subnet = f"subnet/{named}" if named else "subnet/*"
    for kind in ("instance/*", "volume/*", "network-interface/*", "security-group/*", subnet):
        yield Request("ec2:RunInstances", _arn("ec2", region, kind), launch)
    if data.get("ImageId"):
        yield Request(
            "ec2:RunInstances", _arn("ec2", region, f"image/{data['ImageId']}", account=""), launch
        )
    profile = data.get("IamInstanceProfile") or {}
    for role in _profile_roles(profile):
        listed, _ = iam_backends[ACCOUNT]["global"].list_role_tags(role.name, None)
        tags = {t["Key"]: t["Value"] for t in listed}
        context = {"iam:PassedToService": ["ec2.amazonaws.com"]}
        context |= _tags(("aws:ResourceTag", "iam:ResourceTag"), tags)
        yield Request("iam:PassRole", role.arn, context)
    for spec_ in [*(data.get("TagSpecifications") or []), *request.get("TagSpecifications", [])]:
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


def _profile_roles(profile: Mapping[str, Any]) -> list[Any]:
    iam = iam_backends[ACCOUNT]["global"]
    for candidate in iam.get_instance_profiles():
        if profile.get("Arn") == candidate.arn or profile.get("Name") == candidate.name:
            return list(candidate.roles)
    return []
