"""SmokeTestHook: phoenix's example pre-traffic hook, deployed when the environment's
config sets `smoke_test_hook: true` (runtime/smoke_test.py for what it does).

Its name is `phoenix-<env>-smoke-test` in each region of the environment, so a fleet's
`pre_traffic_hook.function` can name it. It may send `AWS-RunShellScript` to the
environment's fleets' instances only (by their tag) and read the results.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from phoenix.config.environment import EnvironmentConfig
from phoenix.fleet.grants import fleet_tagged
from phoenix.kernel.names import HOOK_TAG
from phoenix.kernel.settings import FunctionSettings
from phoenix.platform.functions import PhoenixFunction
from phoenix.platform.nag import acknowledge_wildcard, nag_arn, skip_checkov

HANDLER = "phoenix.hooks.runtime.smoke_test.lambda_handler"


def smoke_test_name(environment: str) -> str:
    """The example hook's function name in each region of `environment`."""
    return f"phoenix-{environment}-smoke-test"


class SmokeTestHook(Construct):
    def __init__(
        self, scope: Construct, id: str, *, config: EnvironmentConfig, key: kms.IKey
    ) -> None:
        super().__init__(scope, id)
        environment = config.name
        stack = Stack.of(self)
        self.function = PhoenixFunction(
            self,
            "Function",
            name="smoke_test",
            handler=HANDLER,
            description=f"phoenix {environment}: example pre-traffic hook (smoke test)",
            settings=FunctionSettings(environment=environment, service_name="phoenix-smoke-test"),
            config=config.functions,
            key=key,
            # the most a fleet's hook may take (phoenix/config/fleet.py PreTrafficHook)
            timeout=Duration.seconds(840),
            function_name=smoke_test_name(environment),
        )
        # the environment's releases may invoke it as a fleet's hook (ReleaseOrchestrator)
        Tags.of(self.function).add(HOOK_TAG, environment)
        skip_checkov(
            self.function,
            "CKV_AWS_116",
            "Invoked synchronously (RequestResponse) by the release's pre-traffic step, "
            "which gets its errors: a dead-letter queue serves asynchronous invocations only.",
        )
        role = self.function.execution_role
        document = stack.format_arn(
            service="ssm",
            account="",
            resource="document",
            resource_name="AWS-RunShellScript",
        )
        instances = stack.format_arn(service="ec2", resource="instance", resource_name="*")
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["ssm:SendCommand"], resources=[document])
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ssm:SendCommand"],
                resources=[instances],
                conditions=fleet_tagged(environment),
            )
        )
        # ListCommandInvocations supports no resource-level permissions (Service
        # Authorization Reference, AWS Systems Manager: its resource types are none).
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["ssm:ListCommandInvocations"], resources=["*"])
        )
        acknowledge_wildcard(
            role,
            nag_arn(stack, "ec2", "instance/*"),
            "The environment's fleets' instances, by their tag: which are new is known "
            "only when a release runs.",
        )
        # (replaces PhoenixFunction's acknowledgment of X-Ray's, which said it was the only one)
        acknowledge_wildcard(
            role,
            "*",
            "X-Ray PutTraceSegments/PutTelemetryRecords and SSM ListCommandInvocations support "
            "no resource-level permissions; those are the only wildcards in this role.",
        )
