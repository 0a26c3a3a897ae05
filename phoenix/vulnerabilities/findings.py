"""The vulnerability function and its rule: Inspector's ACTIVE findings on EC2 instances
(phoenix/vulnerabilities/runtime/finding.py, docs/hygiene.md)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from phoenix.config.environment import EnvironmentConfig
from phoenix.kernel.names import image_name
from phoenix.platform.functions import PhoenixFunction
from phoenix.platform.nag import acknowledge_wildcard
from phoenix.platform.roles import put_events_on_default_bus
from phoenix.platform.undelivered import lambda_target
from phoenix.release.ledger import ReleaseLedger
from phoenix.release.spec import grant_registry_reads
from phoenix.vulnerabilities.runtime.finding import VulnerabilitySettings

VULNERABILITY_LEDGER_CALLS = ("dynamodb:PutItem",)


class VulnerabilityFindings(Construct):
    """The function, with a rule for Inspector's ACTIVE findings on EC2 instances."""

    def __init__(
        self, scope: Construct, id: str, *, config: EnvironmentConfig, key: kms.IKey,
        ledger: ReleaseLedger,
    ) -> None:  # fmt: skip
        super().__init__(scope, id)
        stack = Stack.of(self)
        # The environment's own pipelines (a promoted one bakes in the earlier
        # environment), in the region that bakes its images.
        pipelines = {
            p.name: stack.format_arn(
                service="imagebuilder",
                region=config.region or stack.region,
                resource="image-pipeline",
                resource_name=image_name(config.name, p.name).lower(),
            )
            for p in config.image_pipelines
            if not config.promoted(p.name)
        }
        self.function = PhoenixFunction(
            self,
            "Function",
            name="vulnerabilities",
            handler="phoenix.vulnerabilities.handlers.finding.lambda_handler",
            description=f"phoenix {config.name}: Inspector findings on serving instances",
            settings=VulnerabilitySettings(
                environment=config.name,
                service_name="phoenix-vulnerabilities",
                table_name=ledger.table.table_name,
                image_pipelines=pipelines,
                image_region=config.region or "",
            ),
            config=config.functions,
            key=key,
        )
        ledger.grant(self.function, *VULNERABILITY_LEDGER_CALLS)
        grant_registry_reads(self.function, config.name)
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["ec2:DescribeInstances"], resources=["*"])
        )
        acknowledge_wildcard(
            self.function.execution_role,
            "*",
            "ec2:DescribeInstances supports no resource-level permissions (Service "
            "Authorization Reference); the instance is the finding's.",
        )
        self.function.add_to_role_policy(put_events_on_default_bus(self))
        if pipelines and any(f.rebuild_on_cve for f in config.fleets):
            self.function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["imagebuilder:StartImagePipelineExecution"],
                    resources=sorted(pipelines.values()),
                )
            )
        events.Rule(
            self,
            "Finding",
            description=f"phoenix {config.name}: Inspector's active findings on EC2 instances",
            event_pattern=events.EventPattern(
                source=["aws.inspector2"],
                detail_type=["Inspector2 Finding"],
                detail={"status": ["ACTIVE"], "resources": {"type": ["AWS_EC2_INSTANCE"]}},
            ),
            targets=[lambda_target(self.function)],
        )
