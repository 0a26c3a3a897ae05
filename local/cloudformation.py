"""CloudFormation in the embedded AWS: what moto skips or breaks, done as AWS does it.

moto 5.2 creates most of phoenix's resources from the synthesized templates, but:
- it does not resolve `{{resolve:ssm:...}}` dynamic references (phoenix's templates read
  every controller-owned value through them), nor `Fn::GetStackOutput` (CDK's reference
  from a fleet stack to the region stack's network, key, bucket and topic);
- it skips AWS::CloudWatch::Alarm and AWS::EC2::SecurityGroupEgress;
- it fails on an ALB listener whose forward action is a weighted `ForwardConfig`;
- its custom resources invoke the provider Lambda in Docker, which is not here, so CDK's
  AwsCustomResource and the VPC default-security-group provider would never finish.

Each fix below does what CloudFormation documents for that case, through moto's own API
(a boto3 client, so botocore validates every call as AWS would).

Left as moto leaves it: AWS::S3::BucketPolicy is not applied. moto's server evaluates
bucket policies, and the embedded endpoint speaks plain HTTP, so the TLS-only policies
phoenix (and the CDK bootstrap) put on every bucket would refuse every request.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from moto.cloudformation import models as stacks
from moto.cloudformation import parsing
from moto.cloudformation.custom_model import CustomModel
from moto.elbv2.models import ELBv2Backend, FakeLoadBalancer, FakeTargetGroup

DYNAMIC_SSM = re.compile(r"\{\{resolve:ssm:([^}:]+)(?::(\d+))?\}\}")

_state: dict[str, str | None] = {"endpoint": None}


# Clients of a server's endpoint, made once: making one costs more than most calls.
_clients: dict[tuple[str, str, str, bool], Any] = {}
# One attempt per call, as a service calling another makes (EventBridge's own retries
# are emulated in local/eventbridge_retries.py, not by the SDK's).
_ONE_ATTEMPT = Config(retries={"total_max_attempts": 1})
_clients_lock = threading.Lock()


def endpoint_client(
    service: str, endpoint: str | None, region: str = "us-east-1", *, once: bool = False
) -> Any:
    """A boto3 client for an embedded AWS endpoint (None: moto's in-process mock, made
    anew each time: a mock's clients belong to it); with `once`, making one attempt per
    call."""
    # boto3's stubs type a client by a literal service name; `service` is any one.
    make: Callable[..., Any] = boto3.client

    def new() -> Any:
        return make(
            service,
            region_name=region,
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
            config=_ONE_ATTEMPT if once else None,
        )

    if endpoint is None:
        return new()
    with _clients_lock:
        key = (service, endpoint, region, once)
        if key not in _clients:
            _clients[key] = new()
        return _clients[key]


def embedded_endpoint() -> str | None:
    """The endpoint of the embedded AWS server this process runs (None when in-process)."""
    return _state["endpoint"]


def aws_client(service: str, region: str, *, once: bool = False) -> Any:
    """A boto3 client for the embedded AWS this process serves (or mocks); with `once`,
    making one attempt per call."""
    return endpoint_client(service, _state["endpoint"], region, once=once)


def install(endpoint: str | None = None) -> None:
    """Apply the fixes (once per process); `endpoint` is the server's URL, if one runs."""
    _state["endpoint"] = endpoint
    _patch()


@functools.cache
def _patch() -> None:
    # The models register by subclassing; import them before the caches are cleared.
    from local import cloudformation_resources  # noqa: PLC0415

    parsing.clean_json = _resolving_dynamic_references(parsing.clean_json)
    parsing.parse_resource = _with_property_fixes(parsing.parse_resource)
    ELBv2Backend.convert_and_validate_properties = _keep_weighted_forward(  # type: ignore[method-assign]
        ELBv2Backend.convert_and_validate_properties
    )
    CustomModel.create_from_cloudformation_json = cloudformation_resources.run_custom_resources(  # type: ignore[method-assign]
        CustomModel.create_from_cloudformation_json
    )
    stacks.Stack.create_resources = _failing_visibly(stacks.Stack.create_resources)  # type: ignore[method-assign]
    stacks.Stack.update = _failing_visibly_on_update(stacks.Stack.update)  # type: ignore[method-assign]
    _add_attributes(FakeTargetGroup, {"TargetGroupFullName": _target_group_full_name})
    _add_attributes(FakeLoadBalancer, {"LoadBalancerFullName": _full_name("loadbalancer/")})
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


# -- dynamic references --------------------------------------------------------------------


def resolve_dynamic_references(value: str, region: str) -> str:
    """Replace each `{{resolve:ssm:name[:version]}}` with the parameter's value, as
    CloudFormation does when it deploys; a missing parameter fails the deploy."""

    def lookup(match: re.Match[str]) -> str:
        name, version = match.group(1), match.group(2)
        selector = f"{name}:{version}" if version else name
        response = aws_client("ssm", region).get_parameter(Name=selector)
        return str(response["Parameter"]["Value"])

    return DYNAMIC_SSM.sub(lookup, value)


def stack_output(stack_name: str, output_name: str, region: str) -> str:
    """`Fn::GetStackOutput`: "the value of an output from another stack", in `region`
    (CloudFormation Template Reference, Fn::GetStackOutput; the Region defaults to the
    stack's own). A stack or output that does not exist fails the deploy."""
    (stack,) = aws_client("cloudformation", region).describe_stacks(StackName=stack_name)["Stacks"]
    for output in stack.get("Outputs", []):
        if output["OutputKey"] == output_name:
            return str(output["OutputValue"])
    raise ValueError(f"Output {output_name} does not exist in stack {stack_name}")


def _resolving_dynamic_references(clean_json: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(clean_json)
    def clean(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, str) and "{{resolve:ssm:" in resource_json:
            return resolve_dynamic_references(resource_json, resources_map["AWS::Region"])
        if isinstance(resource_json, dict) and "Fn::GetStackOutput" in resource_json:
            given = clean(resource_json["Fn::GetStackOutput"], resources_map)
            region = given.get("Region") or resources_map["AWS::Region"]
            return stack_output(given["StackName"], given["OutputName"], region)
        return clean_json(resource_json, resources_map)

    return clean


# -- properties moto reads differently from CloudFormation ----------------------------------


def _kms_key(properties: dict[str, Any]) -> None:
    properties["Tags"] = [
        {"TagKey": tag["Key"], "TagValue": tag["Value"]} for tag in properties.get("Tags", [])
    ]
    if isinstance(properties.get("KeyPolicy"), dict):
        properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])


PROPERTY_FIXES: dict[str, Callable[[dict[str, Any]], None]] = {
    "AWS::KMS::Key": _kms_key,
}


def _with_property_fixes(parse: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(parse)
    def parsed(resource_json: dict[str, Any], resources_map: Any) -> Any:
        result = parse(resource_json, resources_map)
        if result:
            _, cleaned, resource_type = result
            fix = PROPERTY_FIXES.get(resource_type)
            if fix:
                fix(cleaned["Properties"])
        return result

    return parsed


# -- attributes moto does not return ----------------------------------------------------------


def _full_name(marker: str) -> Callable[[Any], str]:
    """`...:loadbalancer/app/name/id` -> `app/name/id`, the metric dimension value."""
    return lambda resource: str(resource.arn).split(marker, 1)[1]


def _target_group_full_name(resource: Any) -> str:
    """`...:targetgroup/name/id` -> `targetgroup/name/id`, the metric dimension value."""
    return str(resource.arn).rsplit(":", 1)[1]


def _add_attributes(model: type[Any], extra: dict[str, Callable[[Any], str]]) -> None:
    get_attribute = getattr(model, "get_cfn_attribute", None)
    has_attribute = model.has_cfn_attr

    def get_cfn_attribute(self: Any, attribute_name: str) -> Any:
        if attribute_name in extra:
            return extra[attribute_name](self)
        if get_attribute is None:
            raise KeyError(attribute_name)
        return get_attribute(self, attribute_name)

    def has_cfn_attr(cls: type[Any], attribute: str) -> bool:
        return attribute in extra or bool(has_attribute(attribute))

    model.get_cfn_attribute = get_cfn_attribute
    model.has_cfn_attr = classmethod(has_cfn_attr)


# -- weighted listener actions -------------------------------------------------------------


def _keep_weighted_forward(convert: Callable[..., Any]) -> Callable[..., Any]:
    """A forward action may name one target group or weight several (ForwardConfig)."""

    @functools.wraps(convert)
    def converted(self: ELBv2Backend, properties: dict[str, Any]) -> list[dict[str, Any]]:
        weighted = [a for a in properties["DefaultActions"] if "ForwardConfig" in a]
        if not weighted:
            return list(convert(self, properties))
        actions = []
        for action in properties["DefaultActions"]:
            if "ForwardConfig" not in action:
                actions.append(action)
                continue
            groups = [
                {"TargetGroupArn": g["TargetGroupArn"], "Weight": int(g.get("Weight", 1))}
                for g in action["ForwardConfig"]["TargetGroups"]
            ]
            actions.append({"Type": "forward", "ForwardConfig": {"TargetGroups": groups}})
        return actions

    return converted


_log = logging.getLogger(__name__)


# -- failures ----------------------------------------------------------------------------


def _failing_visibly(create: Callable[..., Any]) -> Callable[..., Any]:
    """A resource that cannot be created fails the stack, as CloudFormation reports it."""

    @functools.wraps(create)
    def created(self: Any) -> None:
        try:
            create(self)
        except Exception as error:
            _log.exception("stack %s failed to create", getattr(self, "name", "?"))
            self.status = "CREATE_FAILED"
            self._add_stack_event("CREATE_FAILED", resource_status_reason=_reason(error))

    return created


def _failing_visibly_on_update(update: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(update)
    def updated(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            update(self, *args, **kwargs)
        except Exception as error:
            _log.exception("stack %s failed to update", getattr(self, "name", "?"))
            self.status = "UPDATE_ROLLBACK_COMPLETE"
            self._add_stack_event("UPDATE_FAILED", resource_status_reason=_reason(error))

    return updated


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:1000]
