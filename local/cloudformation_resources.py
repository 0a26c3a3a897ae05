"""Resources the embedded AWS's CloudFormation creates itself (see local.cloudformation).

Each is created through moto's own API with a boto3 client, so botocore checks every
call as AWS would, and each gives the Ref and attributes CloudFormation documents.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from botocore.exceptions import ClientError
from moto.cloudformation.custom_model import CustomModel
from moto.core.common_models import CloudFormationModel

from local.api_calls import LAMBDA_THREAD
from local.cloudformation import aws_client

_T = TypeVar("_T")


class ApiBacked:
    """A resource made by API calls, for a type moto's CloudFormation skips or misplaces.

    Subclasses set TYPE (and ATTRIBUTES, NAME_PROPERTY) and implement `apply`, which
    returns the physical id (what Ref gives) and the attributes (what GetAtt gives).
    Mixed into direct subclasses of CloudFormationModel: moto finds its models with
    `CloudFormationModel.__subclasses__()`, which lists direct subclasses only.
    """

    TYPE: ClassVar[str] = ""
    NAME_PROPERTY: ClassVar[str] = ""
    ATTRIBUTES: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, physical_id: str, attributes: dict[str, str]) -> None:
        self.physical_id = physical_id
        self.attributes = attributes

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.attributes[attribute_name]

    @classmethod
    def apply(
        cls, properties: dict[str, Any], name: str, account: str, region: str
    ) -> tuple[str, dict[str, str]]:
        raise NotImplementedError

    @classmethod
    def remove(cls, physical_id: str, region: str) -> None:
        """What deleting the resource undoes (nothing, unless a subclass says so)."""

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        properties = dict(cloudformation_json.get("Properties", {}))
        return cls(*cls.apply(properties, resource_name, account_id, region_name))

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

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        cls.remove(resource_name, region_name)


class AlarmModel(ApiBacked, CloudFormationModel):
    """AWS::CloudWatch::Alarm, created with PutMetricAlarm (properties map one to one)."""

    TYPE = "AWS::CloudWatch::Alarm"
    NAME_PROPERTY = "AlarmName"
    ATTRIBUTES = frozenset({"Arn"})

    @classmethod
    def apply(
        cls, properties: dict[str, Any], name: str, account: str, region: str
    ) -> tuple[str, dict[str, str]]:
        properties.setdefault("AlarmName", name)
        for field in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if field in properties:
                properties[field] = int(properties[field])
        properties["Threshold"] = float(properties.get("Threshold", 0))
        for query in properties.get("Metrics", []):
            stat = query.get("MetricStat")
            if stat:
                stat["Period"] = int(stat["Period"])
        cloudwatch = aws_client("cloudwatch", region)
        cloudwatch.put_metric_alarm(**properties)
        (alarm,) = cloudwatch.describe_alarms(AlarmNames=[properties["AlarmName"]])["MetricAlarms"]
        return str(alarm["AlarmName"]), {"Arn": str(alarm["AlarmArn"])}

    @classmethod
    def remove(cls, physical_id: str, region: str) -> None:
        aws_client("cloudwatch", region).delete_alarms(AlarmNames=[physical_id])


class SecurityGroupEgressModel(ApiBacked, CloudFormationModel):
    """AWS::EC2::SecurityGroupEgress, created with AuthorizeSecurityGroupEgress."""

    TYPE = "AWS::EC2::SecurityGroupEgress"

    @classmethod
    def apply(
        cls, properties: dict[str, Any], name: str, account: str, region: str
    ) -> tuple[str, dict[str, str]]:
        permission: dict[str, Any] = {"IpProtocol": str(properties["IpProtocol"])}
        permission |= {f: int(properties[f]) for f in ("FromPort", "ToPort") if f in properties}
        said = {"Description": properties["Description"]} if "Description" in properties else {}
        if "CidrIp" in properties:
            permission["IpRanges"] = [{"CidrIp": properties["CidrIp"]} | said]
        if peer := properties.get("DestinationSecurityGroupId"):
            permission["UserIdGroupPairs"] = [{"GroupId": peer} | said]
        response = aws_client("ec2", region).authorize_security_group_egress(
            GroupId=properties["GroupId"], IpPermissions=[permission]
        )
        rules = response.get("SecurityGroupRules") or [{"SecurityGroupRuleId": name}]
        return str(rules[0]["SecurityGroupRuleId"]), {}


class ScalingPolicyModel(ApiBacked, CloudFormationModel):
    """AWS::AutoScaling::ScalingPolicy, created with PutScalingPolicy."""

    TYPE = "AWS::AutoScaling::ScalingPolicy"

    @classmethod
    def apply(
        cls, properties: dict[str, Any], name: str, account: str, region: str
    ) -> tuple[str, dict[str, str]]:
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
        return str(policy["PolicyARN"]), {}


class TopicPolicyModel(ApiBacked, CloudFormationModel):
    """AWS::SNS::TopicPolicy, applied with SetTopicAttributes(Policy) on each topic."""

    TYPE = "AWS::SNS::TopicPolicy"

    @classmethod
    def apply(
        cls, properties: dict[str, Any], name: str, account: str, region: str
    ) -> tuple[str, dict[str, str]]:
        for topic in properties["Topics"]:
            aws_client("sns", region).set_topic_attributes(
                TopicArn=topic,
                AttributeName="Policy",
                AttributeValue=json.dumps(properties["PolicyDocument"]),
            )
        return name, {}


class QueuePolicyModel(ApiBacked, CloudFormationModel):
    """AWS::SQS::QueuePolicy, applied with SetQueueAttributes(Policy) on each queue."""

    TYPE = "AWS::SQS::QueuePolicy"

    @classmethod
    def apply(
        cls, properties: dict[str, Any], name: str, account: str, region: str
    ) -> tuple[str, dict[str, str]]:
        for queue in properties["Queues"]:
            aws_client("sqs", region).set_queue_attributes(
                QueueUrl=queue, Attributes={"Policy": json.dumps(properties["PolicyDocument"])}
            )
        return name, {}


class EventInvokeConfigModel(ApiBacked, CloudFormationModel):
    """AWS::Lambda::EventInvokeConfig, applied with PutFunctionEventInvokeConfig: the
    retries and on-failure destination of the function's asynchronous invocations
    (local.lambda_dispatch sends a failed invocation's record there)."""

    TYPE = "AWS::Lambda::EventInvokeConfig"

    @classmethod
    def apply(
        cls, properties: dict[str, Any], name: str, account: str, region: str
    ) -> tuple[str, dict[str, str]]:
        config = {
            key: properties[key]
            for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")
            if key in properties
        }
        function = str(properties["FunctionName"])
        aws_client("lambda", region).put_function_event_invoke_config(
            FunctionName=function, **config
        )
        return f"{function}|{properties.get('Qualifier', '$LATEST')}", {}


class StateMachineModel(ApiBacked, CloudFormationModel):
    """AWS::StepFunctions::StateMachine, created with CreateStateMachine.

    moto's own model writes to the backend its API does not read once state machines
    are set to execute (see local.install_extensions), so deployed machines would be
    invisible; creating them through the API puts them where the API looks.
    """

    TYPE = "AWS::StepFunctions::StateMachine"
    NAME_PROPERTY = "StateMachineName"
    ATTRIBUTES = frozenset({"Arn", "Name"})

    @classmethod
    def apply(
        cls, properties: dict[str, Any], name: str, account: str, region: str
    ) -> tuple[str, dict[str, str]]:
        request: dict[str, Any] = {
            "name": properties.get("StateMachineName", name),
            "definition": properties["DefinitionString"],
            "roleArn": properties["RoleArn"],
            "type": properties.get("StateMachineType", "STANDARD"),
            "tags": [{"key": t["Key"], "value": t["Value"]} for t in properties.get("Tags", [])],
        }
        logging = properties.get("LoggingConfiguration")
        if logging:
            groups = [d["CloudWatchLogsLogGroup"] for d in logging.get("Destinations", [])]
            request["loggingConfiguration"] = {
                "level": logging.get("Level", "OFF"),
                "includeExecutionData": bool(logging.get("IncludeExecutionData", False)),
                "destinations": [
                    {"cloudWatchLogsLogGroup": {"logGroupArn": group["LogGroupArn"]}}
                    for group in groups
                ],
            }
        if "TracingConfiguration" in properties:
            request["tracingConfiguration"] = {
                "enabled": bool(properties["TracingConfiguration"].get("Enabled", False))
            }
        response = aws_client("stepfunctions", region).create_state_machine(**request)
        arn = str(response["stateMachineArn"])
        return arn, {"Arn": arn, "Name": request["name"]}


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


def as_provider(service_token: str, call: Callable[[], _T]) -> _T:
    """Run `call` as the provider function named by `service_token` (its ARN) runs it:
    in a thread named after the function, so local.iam authorizes its AWS calls with
    the function's role, as AWS would."""
    if not service_token.startswith("arn:"):
        return call()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except Exception as error:  # handed back to the caller below
            outcome["error"] = error

    name = service_token.rsplit(":", 1)[-1]
    worker = threading.Thread(target=run, name=f"{LAMBDA_THREAD}{name}", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    result: _T = outcome["result"]
    return result


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


def run_custom_resources(create: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap moto's custom resource creation: CDK's own providers run here, in-process."""

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
            logical_id = kwargs["LogicalId"]
            resource = CustomModel(region_name, "", logical_id, resource_name)  # type: ignore[abstract]
            if resource_type == "Custom::VpcRestrictDefaultSG":
                _restrict_default_security_group(properties, region_name)
                resource.set_data({})
                return resource
            call = properties["Create"]
            physical_id, data = as_provider(
                str(properties.get("ServiceToken", "")),
                lambda: run_sdk_call(
                    json.loads(call) if isinstance(call, str) else call, region_name
                ),
            )
            resource.resource_name = physical_id or resource_name
            resource.set_data(data)
            return resource
        original: CustomModel = create(
            resource_name, cloudformation_json, account_id, region_name, **kwargs
        )
        return original

    return created
