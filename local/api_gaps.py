"""Small gaps in moto that phoenix runs into, filled as AWS documents them.

- CreateLaunchTemplateVersion with `SourceVersion`: "the new version inherits the same
  launch parameters as the source version, except for parameters that you specify in
  LaunchTemplateData". moto ignores SourceVersion and keeps only the data given, so a
  new version with just an ImageId would lose the instance type, profile and groups.
- GetMetricData with a percentile statistic (`p99`, `p99.9`): moto answers None. Here
  the nearest-rank percentile of the period's raw values, which is what CloudWatch
  computes for values published one by one.
- The Step Functions context object's `$$.Execution.StartTime`: AWS gives an ISO 8601
  string ("2019-03-26T20:14:13.192Z"); moto's interpreter a datetime, which breaks any
  state that passes it on (DescribeExecution then fails to encode the output).
- The error an AWS SDK integration's task fails with is "the service name and the error
  name ..., both in Pascal case" (Step Functions Developer Guide, "Learning to use AWS
  service SDK integrations"): `Ssm.ParameterNotFoundException`, as AWS's own execution
  histories show it. moto's interpreter knows the Pascal case of two services and falls
  back to the lower-case name (`ssm.`) for the rest, so a Catch written as AWS names the
  error never matches; SSM's is added here.
- An `AWS::SSM::Parameter`'s `Tags`: "Optional metadata that you assign to a resource in
  the form of an arbitrary set of tags (key-value pairs)", a JSON object (CloudFormation
  User Guide, AWS::SSM::Parameter). moto's CloudFormation hands the object to PutParameter
  as if it were PutParameter's list of {Key, Value}, and fails on the first key.
- An `AWS::ElasticLoadBalancingV2::Listener`'s `Tags` ("The tags to assign to the
  listener", CloudFormation User Guide; updatable without interruption): moto's
  CloudFormation drops them, so a policy scoped by a listener's tags could never match.
- An `AWS::Lambda::Function`'s `Tags` ("A list of tags to apply to the function",
  CloudFormation User Guide): moto's CloudFormation drops them, so a grant scoped by a
  function's tags (a pre-traffic hook's) could never match.
- The optimized Step Functions integration (`arn:aws:states:::states:startExecution` and
  its `.sync`, `.sync:2`, `.waitForTaskToken` forms) takes its parameters as its
  developer guide writes them, `StateMachineArn`, `Input`, `Name` ("Start a new AWS Step
  Functions state machine from a running execution", its examples), which are the
  StartExecution API's `stateMachineArn`, `input`, `name`. moto's interpreter passes
  them to its SDK client unchanged, which refuses them (botocore knows no `Input`). Its
  results are in the same case, as the guide's examples show them (`ExecutionArn`,
  `StartDate`; with `.sync`, DescribeExecution's `Status`, `Output`...): moto hands on the
  SDK's own (`executionArn`) and then looks for `ExecutionArn` itself.
- SendTaskFailure's `cause`: "A more detailed explanation of the cause of the failure"
  (Step Functions API reference, SendTaskFailure), which a Catch's result holds as
  `Cause` beside `Error` (developer guide, "Handling errors in Step Functions
  workflows"). moto's server reads only the token and the error, so the cause is lost.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, SupportsFloat

from moto.awslambda.models import LambdaFunction
from moto.cloudwatch.models import Statistics
from moto.core.responses import EmptyResult
from moto.ec2.models.launch_templates import LaunchTemplate
from moto.ec2.responses.launch_templates import LaunchTemplates
from moto.elbv2.models import FakeListener, elbv2_backends
from moto.ssm.models import Parameter
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (  # noqa: E501
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.backend import execution_worker
from moto.stepfunctions.responses import StepFunctionResponse

_PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d+)?)$")


def merged(source: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The source version's data with the given parameters replacing theirs."""
    return {**source, **given}


def percentile(values: list[float], rank: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, math.ceil(rank / 100 * len(ordered)) - 1)
    return ordered[index]


@functools.cache
def install() -> None:
    """Fill the gaps in this process (once)."""
    LaunchTemplates.create_launch_template_version = _inheriting(  # type: ignore[method-assign]
        LaunchTemplates.create_launch_template_version
    )
    make_data = execution_worker.__dict__["ExecutionData"]
    setattr(execution_worker, "ExecutionData", _iso_start_time(make_data))  # noqa: B010
    Statistics.get_statistics_for_type = _with_percentiles(  # type: ignore[method-assign,assignment]
        Statistics.get_statistics_for_type
    )
    state_task_service_aws_sdk._SERVICE_ERROR_NAMES.setdefault("ssm", "Ssm")
    created = Parameter.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]
    Parameter.create_from_cloudformation_json = classmethod(_tags_as_a_list(created))  # type: ignore[method-assign,assignment]
    for name in ("create_from_cloudformation_json", "update_from_cloudformation_json"):
        made = getattr(FakeListener, name).__func__
        setattr(FakeListener, name, classmethod(_tagged(_tag_listener)(made)))
    for name in ("create_from_cloudformation_json", "update_from_cloudformation_json"):
        made = getattr(LambdaFunction, name).__func__
        setattr(LambdaFunction, name, classmethod(_tagged(_tag_function)(made)))
    StateTaskServiceSfn._normalise_parameters = _api_member_names(  # type: ignore[method-assign]
        StateTaskServiceSfn._normalise_parameters
    )
    StateTaskServiceSfn._normalise_response = _pascal_case_response  # type: ignore[method-assign,assignment]
    StepFunctionResponse.send_task_failure = _send_task_failure  # type: ignore[method-assign]


def _send_task_failure(self: StepFunctionResponse) -> Any:
    """SendTaskFailure with its error and its cause."""
    # the interpreter's backend (moto.stepfunctions.parser.models), which takes a cause
    backend: Any = self.stepfunction_backend
    backend.send_task_failure(
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
    )
    return EmptyResult()


# The optimized integration's parameters (its developer guide's names) -> StartExecution's.
_START_EXECUTION_MEMBERS = {"StateMachineArn": "stateMachineArn", "Input": "input", "Name": "name"}


def api_member_names(parameters: dict[str, Any]) -> None:
    """Rename the integration's StartExecution parameters to the API's, in place."""
    for given, member in _START_EXECUTION_MEMBERS.items():
        if given in parameters:
            parameters[member] = parameters.pop(given)


def pascal_case(response: dict[str, Any]) -> None:
    """The integration's result keys as Step Functions writes them, in place."""
    for key in list(response):
        response[key[:1].upper() + key[1:]] = response.pop(key)


def _pascal_case_response(_: StateTaskServiceSfn, response: Any, *__: Any, **___: Any) -> None:
    if isinstance(response, dict):
        pascal_case(response)


def _api_member_names(normalise: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(normalise)
    def normalised(
        self: StateTaskServiceSfn, parameters: dict[str, Any], *args: Any, **kwargs: Any
    ) -> None:
        normalise(self, parameters, *args, **kwargs)
        if self._get_boto_service_action() == "start_execution":
            api_member_names(parameters)

    return normalised


def _inheriting(create: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(create)
    def create_version(self: LaunchTemplates) -> Any:
        source = self._get_param("SourceVersion")
        if source is None:
            return create(self)
        name, template_id = (
            self._get_param("LaunchTemplateName"),
            self._get_param("LaunchTemplateId"),
        )
        template: LaunchTemplate = (
            self.ec2_backend.get_launch_template(template_id)
            if template_id
            else self.ec2_backend.get_launch_template_by_name(name)
        )
        base = template.get_version(source).data
        original = template.create_version

        def inheriting(data: dict[str, Any], description: str) -> Any:
            return original(merged(base, data), description)

        template.create_version = inheriting  # type: ignore[method-assign]
        try:
            return create(self)
        finally:
            del template.create_version

    return create_version


def _with_percentiles(
    statistic: Callable[[Statistics, str], SupportsFloat | None],
) -> Callable[[Statistics, str], SupportsFloat | None]:
    @functools.wraps(statistic)
    def of_type(self: Statistics, stat: str) -> SupportsFloat | None:
        match = _PERCENTILE.match(stat)
        if match is None:
            return statistic(self, stat)
        return percentile(self.metric_single_values_list, float(match.group(1)))

    return of_type


def iso_time(moment: datetime) -> str:
    """A time as Step Functions writes it in the context object."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso_start_time(make: Callable[..., Any]) -> Callable[..., Any]:
    def execution_data(**fields: Any) -> Any:
        if isinstance(fields.get("StartTime"), datetime):
            fields["StartTime"] = iso_time(fields["StartTime"])
        return make(**fields)

    return execution_data


def parameter_tags(properties: dict[str, Any]) -> dict[str, Any]:
    """The properties with a `Tags` object as PutParameter's list of {Key, Value}."""
    tags = properties.get("Tags")
    if not isinstance(tags, dict):
        return properties
    return {**properties, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}


def _tags_as_a_list(create: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(create)
    def created(cls: Any, name: str, template: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        properties = parameter_tags(template.get("Properties", {}))
        return create(cls, name, {**template, "Properties": properties}, *args, **kwargs)

    return created


def _tagged(apply: Callable[[Any, list[dict[str, str]]], None]) -> Callable[..., Any]:
    """Wraps a CloudFormation create or update so the resource it made is given its
    template's Tags by `apply` (what moto's CloudFormation drops)."""

    def wrapping(make: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(make)
        def made(cls: Any, *args: Any, **kwargs: Any) -> Any:
            resource = make(cls, *args, **kwargs)
            template = next(a for a in args if isinstance(a, dict) and "Properties" in a)
            tags = template["Properties"].get("Tags") or []
            if tags:
                apply(resource, tags)
            return resource

        return made

    return wrapping


def _tag_listener(listener: Any, tags: list[dict[str, str]]) -> None:
    region, account = listener.arn.split(":")[3:5]
    elbv2_backends[account][region].add_tags([listener.arn], tags)


def _tag_function(function: Any, tags: list[dict[str, str]]) -> None:
    function.tags = {**(function.tags or {}), **{t["Key"]: t["Value"] for t in tags}}
