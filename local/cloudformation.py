"""CloudFormation in the embedded AWS: what moto skips or breaks, done as AWS does it.

moto 5.2 creates most of phoenix's resources from the synthesized templates, but:
- it does not resolve `{{resolve:ssm:...}}` dynamic references (phoenix's templates read
  every controller-owned value through them);
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
import re
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto.cloudformation import models as stacks
from moto.cloudformation import parsing
from moto.cloudformation.custom_model import CustomModel
from moto.core.common_models import CloudFormationModel
from moto.elbv2.models import ELBv2Backend, FakeLoadBalancer, FakeTargetGroup

DYNAMIC_SSM = re.compile(r"\{\{resolve:ssm:([^}:]+)(?::(\d+))?\}\}")

_state: dict[str, str | None] = {"endpoint": None}
_installed: list[bool] = []


def endpoint_client(service: str, endpoint: str | None, region: str = "us-east-1") -> Any:
    """A boto3 client for an embedded AWS endpoint (None: moto's in-process mock)."""
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
    )


def aws_client(service: str, region: str) -> Any:
    """A boto3 client for the embedded AWS this process serves (or mocks)."""
    return endpoint_client(service, _state["endpoint"], region)


def install(endpoint: str | None = None) -> None:
    """Apply the fixes (once per process); `endpoint` is the server's URL, if one runs."""
    _state["endpoint"] = endpoint
    if _installed:
        return
    _installed.append(True)
    parsing.clean_json = _resolving_dynamic_references(parsing.clean_json)
    parsing.parse_resource = _with_property_fixes(parsing.parse_resource)
    ELBv2Backend.convert_and_validate_properties = _keep_weighted_forward(  # type: ignore[method-assign]
        ELBv2Backend.convert_and_validate_properties
    )
    CustomModel.create_from_cloudformation_json = _run_custom_resources(  # type: ignore[method-assign]
        CustomModel.create_from_cloudformation_json
    )
    stacks.Stack.create_resources = _failing_visibly(stacks.Stack.create_resources)  # type: ignore[method-assign]
    stacks.Stack.update = _failing_visibly_on_update(stacks.Stack.update)  # type: ignore[method-assign]
    _add_attributes(FakeTargetGroup, {"TargetGroupFullName": _target_group_full_name})
    _add_attributes(FakeLoadBalancer, {"LoadBalancerFullName": _full_name("loadbalancer/")})
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()  # the models below register by subclassing


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


def _resolving_dynamic_references(clean_json: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(clean_json)
    def clean(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, str) and "{{resolve:ssm:" in resource_json:
            return resolve_dynamic_references(resource_json, resources_map["AWS::Region"])
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


# -- resources moto skips --------------------------------------------------------------------


class AlarmModel(CloudFormationModel):
    """AWS::CloudWatch::Alarm, created with PutMetricAlarm (properties map one to one)."""

    def __init__(self, name: str, arn: str, region: str) -> None:
        self.name = name
        self.arn = arn
        self.region = region

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> AlarmModel:
        properties = dict(cloudformation_json["Properties"])
        properties.setdefault("AlarmName", resource_name)
        for field in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if field in properties:
                properties[field] = int(properties[field])
        properties["Threshold"] = float(properties.get("Threshold", 0))
        for query in properties.get("Metrics", []):
            stat = query.get("MetricStat")
            if stat:
                stat["Period"] = int(stat["Period"])
        cloudwatch = aws_client("cloudwatch", region_name)
        cloudwatch.put_metric_alarm(**properties)
        (alarm,) = cloudwatch.describe_alarms(AlarmNames=[properties["AlarmName"]])["MetricAlarms"]
        return cls(alarm["AlarmName"], alarm["AlarmArn"], region_name)

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        aws_client("cloudwatch", region_name).delete_alarms(AlarmNames=[resource_name])


class SecurityGroupEgressModel(CloudFormationModel):
    """AWS::EC2::SecurityGroupEgress, created with AuthorizeSecurityGroupEgress."""

    def __init__(self, rule_id: str) -> None:
        self.rule_id = rule_id

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::EC2::SecurityGroupEgress"

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @property
    def physical_resource_id(self) -> str:
        return self.rule_id

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> SecurityGroupEgressModel:
        rule = dict(cloudformation_json["Properties"])
        permission: dict[str, Any] = {"IpProtocol": str(rule["IpProtocol"])}
        for field in ("FromPort", "ToPort"):
            if field in rule:
                permission[field] = int(rule[field])
        if "CidrIp" in rule:
            permission["IpRanges"] = [{"CidrIp": rule["CidrIp"]}]
        if "DestinationSecurityGroupId" in rule:
            permission["UserIdGroupPairs"] = [{"GroupId": rule["DestinationSecurityGroupId"]}]
        response = aws_client("ec2", region_name).authorize_security_group_egress(
            GroupId=rule["GroupId"], IpPermissions=[permission]
        )
        rules = response.get("SecurityGroupRules") or [{"SecurityGroupRuleId": resource_name}]
        return cls(rules[0]["SecurityGroupRuleId"])


class _ApiBacked:
    """A resource created by one API call, for types moto's CloudFormation skips.

    Mixed into direct subclasses of CloudFormationModel: moto finds its models with
    `CloudFormationModel.__subclasses__()`, which lists direct subclasses only.
    """

    TYPE = ""

    def __init__(self, physical_id: str) -> None:
        self.physical_id = physical_id

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    @classmethod
    def apply(cls, properties: dict[str, Any], region: str, name: str) -> str:
        raise NotImplementedError

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        return cls(cls.apply(dict(cloudformation_json["Properties"]), region_name, resource_name))

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )


class ScalingPolicyModel(_ApiBacked, CloudFormationModel):
    """AWS::AutoScaling::ScalingPolicy, created with PutScalingPolicy."""

    TYPE = "AWS::AutoScaling::ScalingPolicy"

    @classmethod
    def apply(cls, properties: dict[str, Any], region: str, name: str) -> str:
        properties.setdefault("PolicyName", name)
        tracking = properties.get("TargetTrackingConfiguration")
        if tracking:
            tracking["TargetValue"] = float(tracking["TargetValue"])
        autoscaling = aws_client("autoscaling", region)
        autoscaling.put_scaling_policy(**properties)
        (policy,) = autoscaling.describe_policies(
            AutoScalingGroupName=properties["AutoScalingGroupName"],
            PolicyNames=[properties["PolicyName"]],
        )["ScalingPolicies"]
        return str(policy["PolicyARN"])


class TopicPolicyModel(_ApiBacked, CloudFormationModel):
    """AWS::SNS::TopicPolicy, applied with SetTopicAttributes(Policy) on each topic."""

    TYPE = "AWS::SNS::TopicPolicy"

    @classmethod
    def apply(cls, properties: dict[str, Any], region: str, name: str) -> str:
        for topic in properties["Topics"]:
            aws_client("sns", region).set_topic_attributes(
                TopicArn=topic,
                AttributeName="Policy",
                AttributeValue=json.dumps(properties["PolicyDocument"]),
            )
        return name


class StateMachineModel(_ApiBacked, CloudFormationModel):
    """AWS::StepFunctions::StateMachine, created with CreateStateMachine.

    moto's own model writes to the backend its API does not read once state machines
    are set to execute (see local.install_extensions), so deployed machines would be
    invisible; creating them through the API puts them where the API looks.
    """

    TYPE = "AWS::StepFunctions::StateMachine"

    @classmethod
    def apply(cls, properties: dict[str, Any], region: str, name: str) -> str:
        request: dict[str, Any] = {
            "name": properties.get("StateMachineName", name),
            "definition": properties["DefinitionString"],
            "roleArn": properties["RoleArn"],
            "type": properties.get("StateMachineType", "STANDARD"),
            "tags": [{"key": t["Key"], "value": t["Value"]} for t in properties.get("Tags", [])],
        }
        logging = properties.get("LoggingConfiguration")
        if logging:
            request["loggingConfiguration"] = {
                "level": logging.get("Level", "OFF"),
                "includeExecutionData": bool(logging.get("IncludeExecutionData", False)),
                "destinations": [
                    {
                        "cloudWatchLogsLogGroup": {
                            "logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]
                        }
                    }
                    for d in logging.get("Destinations", [])
                ],
            }
        if "TracingConfiguration" in properties:
            request["tracingConfiguration"] = {
                "enabled": bool(properties["TracingConfiguration"].get("Enabled", False))
            }
        response = aws_client("stepfunctions", region).create_state_machine(**request)
        return str(response["stateMachineArn"])

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in {"Arn", "Name"}

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.physical_id if attribute_name == "Arn" else self.physical_id.rsplit(":", 1)[1]


# -- failures ----------------------------------------------------------------------------


def _failing_visibly(create: Callable[..., Any]) -> Callable[..., Any]:
    """A resource that cannot be created fails the stack, as CloudFormation reports it."""

    @functools.wraps(create)
    def created(self: Any) -> None:
        try:
            create(self)
        except Exception as error:
            self.status = "CREATE_FAILED"
            self._add_stack_event("CREATE_FAILED", resource_status_reason=_reason(error))

    return created


def _failing_visibly_on_update(update: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(update)
    def updated(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            update(self, *args, **kwargs)
        except Exception as error:
            self.status = "UPDATE_ROLLBACK_COMPLETE"
            self._add_stack_event("UPDATE_FAILED", resource_status_reason=_reason(error))

    return updated


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:1000]


# -- custom resources ------------------------------------------------------------------------


def sdk_call_method(action: str) -> str:
    """`PutParameter` (an AWS SDK v3 command, as AwsCustomResource names it) -> put_parameter."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action.removesuffix("Command")).lower()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A response as AwsCustomResource returns it: nested keys joined with dots."""
    if isinstance(value, Mapping):
        items: list[tuple[str, Any]] = list(value.items())
    elif isinstance(value, list):
        items = [(str(index), item) for index, item in enumerate(value)]
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat |= flatten(item, f"{prefix}.{key}" if prefix else key)
    return flat


def run_sdk_call(call: Mapping[str, Any], region: str) -> tuple[str | None, dict[str, Any]]:
    """Run one AwsCustomResource call: (physical id, response data) or a ClientError."""
    client = aws_client(str(call["service"]).lower(), call.get("region", region))
    try:
        response = getattr(client, sdk_call_method(call["action"]))(**call.get("parameters", {}))
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        pattern = call.get("ignoreErrorCodesMatching")
        if not pattern or not re.fullmatch(pattern, code):
            raise
        response = {}
    response.pop("ResponseMetadata", None)
    data = flatten(response)
    if call.get("outputPaths"):
        data = {k: v for k, v in data.items() if k in call["outputPaths"]}
    physical = call.get("physicalResourceId", {})
    physical_id = physical.get("id") or (
        data.get(physical["responsePath"]) if "responsePath" in physical else None
    )
    return physical_id, data


def _restrict_default_security_group(properties: Mapping[str, Any], region: str) -> None:
    """CDK's VpcRestrictDefaultSG provider: strip every rule from the default group."""
    ec2 = aws_client("ec2", region)
    group_id = properties["DefaultSecurityGroupId"]
    (group,) = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    if group["IpPermissions"]:
        ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=group["IpPermissions"])
    if group["IpPermissionsEgress"]:
        ec2.revoke_security_group_egress(
            GroupId=group_id, IpPermissions=group["IpPermissionsEgress"]
        )


def _run_custom_resources(create: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(create)
    def created(
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CustomModel:
        properties = cloudformation_json["Properties"]
        resource_type = kwargs["ResourceType"]
        if "Create" in properties or resource_type == "Custom::VpcRestrictDefaultSG":
            resource = CustomModel(region_name, "", kwargs["LogicalId"], resource_name)  # type: ignore[abstract]
            if resource_type == "Custom::VpcRestrictDefaultSG":
                _restrict_default_security_group(properties, region_name)
                resource.set_data({})
                return resource
            call = properties["Create"]
            physical_id, data = run_sdk_call(
                json.loads(call) if isinstance(call, str) else call, region_name
            )
            resource.resource_name = physical_id or resource_name
            resource.set_data(data)
            return resource
        original: CustomModel = create(
            resource_name, cloudformation_json, account_id, region_name, **kwargs
        )
        return original

    return created
