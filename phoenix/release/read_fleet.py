"""The release state machine's first states: the fleet's spec, from the fleet registry.

A direct GetParameter of `/phoenix-fleets/<env>/<fleet>` (docs/adr/0009-fleet-registry.md),
so the definition holds nothing per fleet.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from phoenix.platform.roles import parameter_arn


def read_fleet(scope: Construct, registry: str) -> sfn.IChainable:
    """`$.fleet_spec`: the fleet's registry parameter, parsed. A fleet the registry does
    not hold ends the execution `UnknownFleet`. An AWS SDK integration fails with the
    service's and the error's names in Pascal case, always ending in Exception (Step
    Functions Developer Guide, "Learning to use AWS service SDK integrations")."""
    read = tasks.CallAwsService(
        scope,
        "ReadFleet",
        service="ssm",
        action="getParameter",
        iam_action="ssm:GetParameter",
        iam_resources=[parameter_arn(scope, f"{registry}/*")],
        parameters={
            "Name": sfn.JsonPath.format(f"{registry}/{{}}", sfn.JsonPath.string_at("$.fleet"))
        },
        result_selector={
            "spec": sfn.JsonPath.string_to_json(sfn.JsonPath.string_at("$.Parameter.Value"))
        },
        result_path="$.fleet_spec",
    )
    read.add_retry(
        errors=["Ssm.ThrottlingException", "Ssm.InternalServerErrorException"],
        interval=Duration.seconds(1),
        max_attempts=4,
        backoff_rate=2,
    )
    unknown = sfn.Fail(scope, "UnknownFleet", error="UnknownFleet", cause="not in the registry")
    read.add_catch(
        unknown,
        errors=["Ssm.ParameterNotFoundException", "Ssm.ValidationException"],
        result_path="$.error",
    )
    # The spec in place of its wrapper: a Pass puts its (InputPath) input at ResultPath.
    spec = sfn.Pass(scope, "FleetSpec", input_path="$.fleet_spec.spec", result_path="$.fleet_spec")
    return read.next(spec)
