"""Rendering CloudFormation intrinsics in IAM policy ARNs to strings, for the IAM oracle
(tests/iam_reference.py): see TemplateRenderer."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# ---------------------------------------------------------------------------------------------
# Rendering CloudFormation intrinsics


class UnrenderableError(Exception):
    """An intrinsic this renderer cannot turn into a string it can vouch for."""


# What `Ref` returns when it is an ARN, by resource type. Any other Ref is an id or a name: one
# ARN segment. `{name}` is the logical id, which has no ":", "/", "*" or "?".
REF_ARNS: Mapping[str, str] = {
    "AWS::ElasticLoadBalancingV2::LoadBalancer": (
        "arn:{partition}:elasticloadbalancing:{region}:{account}:loadbalancer/{kind}/{name}/{name}"
    ),
    "AWS::ElasticLoadBalancingV2::Listener": (
        "arn:{partition}:elasticloadbalancing:{region}:{account}:listener/{kind}/{name}/{name}/{name}"
    ),
    "AWS::ElasticLoadBalancingV2::TargetGroup": (
        "arn:{partition}:elasticloadbalancing:{region}:{account}:targetgroup/{name}/{name}"
    ),
    "AWS::IAM::ManagedPolicy": "arn:{partition}:iam::{account}:policy/{name}",
    "AWS::SecretsManager::Secret": (
        "arn:{partition}:secretsmanager:{region}:{account}:secret:{name}"
    ),
    "AWS::SNS::Topic": "arn:{partition}:sns:{region}:{account}:{name}",
    "AWS::StepFunctions::Activity": "arn:{partition}:states:{region}:{account}:activity:{name}",
    "AWS::StepFunctions::StateMachine": (
        "arn:{partition}:states:{region}:{account}:stateMachine:{name}"
    ),
}

# What `Fn::GetAtt [X, Arn]` returns, by resource type. Any other attribute whose name ends in
# "Arn" on a type not listed here cannot be rendered: the renderer says so rather than guess.
GETATT_ARNS: Mapping[tuple[str, str], str] = {
    ("AWS::CloudWatch::Alarm", "Arn"): "arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}",
    ("AWS::DynamoDB::Table", "Arn"): "arn:{partition}:dynamodb:{region}:{account}:table/{name}",
    ("AWS::DynamoDB::Table", "StreamArn"): (
        "arn:{partition}:dynamodb:{region}:{account}:table/{name}/stream/{name}"
    ),
    ("AWS::Events::EventBus", "Arn"): "arn:{partition}:events:{region}:{account}:event-bus/{name}",
    ("AWS::Events::Rule", "Arn"): "arn:{partition}:events:{region}:{account}:rule/{name}",
    ("AWS::IAM::InstanceProfile", "Arn"): "arn:{partition}:iam::{account}:instance-profile/{name}",
    ("AWS::IAM::Role", "Arn"): "arn:{partition}:iam::{account}:role/{name}",
    ("AWS::IAM::User", "Arn"): "arn:{partition}:iam::{account}:user/{name}",
    ("AWS::ImageBuilder::Image", "Arn"): (
        "arn:{partition}:imagebuilder:{region}:{account}:image/{name}/1.0.0/1"
    ),
    ("AWS::ImageBuilder::ImagePipeline", "Arn"): (
        "arn:{partition}:imagebuilder:{region}:{account}:image-pipeline/{name}"
    ),
    ("AWS::ImageBuilder::ImageRecipe", "Arn"): (
        "arn:{partition}:imagebuilder:{region}:{account}:image-recipe/{name}/1.0.0"
    ),
    ("AWS::KMS::Key", "Arn"): "arn:{partition}:kms:{region}:{account}:key/{name}",
    ("AWS::Lambda::Function", "Arn"): "arn:{partition}:lambda:{region}:{account}:function:{name}",
    # A log group's Arn attribute ends in ":*" (CloudFormation's documented return value).
    ("AWS::Logs::LogGroup", "Arn"): "arn:{partition}:logs:{region}:{account}:log-group:{name}:*",
    ("AWS::S3::Bucket", "Arn"): "arn:{partition}:s3:::{name}",
    ("AWS::SNS::Topic", "TopicArn"): "arn:{partition}:sns:{region}:{account}:{name}",
    ("AWS::SQS::Queue", "Arn"): "arn:{partition}:sqs:{region}:{account}:{name}",
    ("AWS::StepFunctions::StateMachine", "Arn"): (
        "arn:{partition}:states:{region}:{account}:stateMachine:{name}"
    ),
}

_LOAD_BALANCER_KINDS = {"application": "app", "network": "net", "gateway": "gwy"}
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")
_NO_VALUE = object()

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"


@dataclass(frozen=True)
class TemplateRenderer:
    """Renders a template's values to strings, as CloudFormation would up to names and ids.

    - `AWS::Partition` is "aws"; `AWS::Region` and `AWS::AccountId` are the stack's, or
      us-east-1 and 123456789012 where the stack is environment-agnostic.
    - `Ref` and `Fn::GetAtt` of a resource that yield an ARN (REF_ARNS, GETATT_ARNS) become an
      ARN of that resource's format, named by the logical id; any other Ref or GetAtt (an id, a
      name) becomes a placeholder that fills one ARN segment: the logical id (and attribute).
    - `Fn::Join`, `Fn::Sub`, `Fn::Select`, `Fn::Split`, `Fn::FindInMap` and `Fn::GetAZs` are
      evaluated; `Fn::ImportValue` is a one-segment placeholder; anything else (`Fn::If`, a Ref
      of an ARN-valued type not listed) raises UnrenderableError, reported as a finding.
    """

    template: Mapping[str, Any]
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    partition: str = "aws"

    def strings(self, value: Any) -> list[str]:
        """A Resource element (a string, an intrinsic, or a list of them) as strings."""
        rendered = self._render(value)
        if rendered is _NO_VALUE:
            return []
        if isinstance(rendered, str):
            return [rendered]
        if isinstance(rendered, list):
            return [item for item in rendered if isinstance(item, str)]
        raise UnrenderableError(f"not a string: {json.dumps(value)}")

    def _render(self, value: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return str(value).lower() if isinstance(value, bool) else str(value)
        if isinstance(value, list):
            rendered = [self._render(item) for item in value]
            flat: list[str] = []
            for item in rendered:
                if item is _NO_VALUE:
                    continue
                flat.extend(item if isinstance(item, list) else [item])
            return flat
        if isinstance(value, Mapping) and len(value) == 1:
            ((function, argument),) = value.items()
            handler = self._functions().get(function)
            if handler is not None:
                return handler(argument)
        raise UnrenderableError(f"cannot render {json.dumps(value)}")

    def _functions(self) -> Mapping[str, Callable[[Any], Any]]:
        return {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Join": self._join,
            "Fn::Sub": self._sub,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::FindInMap": self._find_in_map,
            "Fn::GetAZs": lambda _: [f"{self.region}a", f"{self.region}b", f"{self.region}c"],
            "Fn::ImportValue": lambda _: "ImportedValue",
        }

    def _text(self, value: Any) -> str:
        rendered = self._render(value)
        if not isinstance(rendered, str):
            raise UnrenderableError(f"not a string: {json.dumps(value)}")
        return rendered

    def _resources(self) -> Mapping[str, Any]:
        resources: Mapping[str, Any] = self.template.get("Resources", {})
        return resources

    def _fill(self, pattern: str, logical_id: str, resource: Mapping[str, Any]) -> str:
        return pattern.format(
            partition=self.partition,
            region=self.region,
            account=self.account,
            name=logical_id,
            kind=self._load_balancer_kind(resource),
        )

    def _load_balancer_kind(self, resource: Mapping[str, Any]) -> str:
        """app, net or gwy: a load balancer's own Type, or that of a listener's balancer."""
        properties: Mapping[str, Any] = resource.get("Properties", {})
        balancer = properties.get("LoadBalancerArn")
        if isinstance(balancer, Mapping) and isinstance(balancer.get("Ref"), str):
            properties = self._resources().get(balancer["Ref"], {}).get("Properties", {})
        kind = properties.get("Type", "application")
        return _LOAD_BALANCER_KINDS.get(kind, "app") if isinstance(kind, str) else "app"

    def _ref(self, name: Any) -> Any:
        pseudo = {
            "AWS::Partition": self.partition,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "StackName",
            "AWS::StackId": f"arn:{self.partition}:cloudformation:{self.region}:"
            f"{self.account}:stack/StackName/StackId",
        }
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in pseudo:
            return pseudo[name]
        resource = self._resources().get(name)
        if resource is None:
            return str(name)  # a template parameter: a value of one segment
        arn = REF_ARNS.get(resource["Type"])
        return str(name) if arn is None else self._fill(arn, name, resource)

    def _get_att(self, argument: Any) -> Any:
        if isinstance(argument, str):
            logical_id, _, attribute = argument.partition(".")
        else:
            logical_id, attribute = argument[0], self._text(argument[1])
        resource = self._resources().get(logical_id)
        if resource is None:
            raise UnrenderableError(f"GetAtt of {logical_id}, which the template lacks")
        arn = GETATT_ARNS.get((resource["Type"], attribute))
        if arn is not None:
            return self._fill(arn, logical_id, resource)
        if attribute.endswith("Arn"):
            raise UnrenderableError(
                f"GetAtt {logical_id}.{attribute} of a {resource['Type']}: add its ARN format "
                "to GETATT_ARNS"
            )
        return f"{logical_id}.{attribute}"

    def _join(self, argument: Any) -> str:
        delimiter, values = argument
        parts = self._render(values)
        if not isinstance(parts, list):
            raise UnrenderableError(f"Fn::Join of {json.dumps(values)}")
        return str(delimiter).join(parts)

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return self._text(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return self._text({"Fn::GetAtt": name})
            return self._text({"Ref": name})

        return _SUB_VARIABLE.sub(substitute, text).replace("${!", "${")

    def _select(self, argument: Any) -> Any:
        index, values = argument
        items = self._render(values)
        if not isinstance(items, list):
            raise UnrenderableError(f"Fn::Select of {json.dumps(values)}")
        return items[int(self._text(index))]

    def _split(self, argument: Any) -> list[str]:
        delimiter, source = argument
        return self._text(source).split(delimiter)

    def _find_in_map(self, argument: Any) -> Any:
        name, top, second = (self._text(item) for item in argument)
        try:
            return self._render(self.template["Mappings"][name][top][second])
        except KeyError as missing:
            raise UnrenderableError(f"Fn::FindInMap {name}/{top}/{second}") from missing
