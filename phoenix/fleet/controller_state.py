"""The release controller's state of each fleet, created once and never written by a deploy.

The parameters live in their own stack, deployed before the stack that reads them:
CloudFormation resolves `{{resolve:ssm:...}}` references when it plans a stack
operation, so a parameter must exist before the stack that reads it is deployed.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from phoenix.config.environment import FleetConfig
from phoenix.kernel.names import (
    Slot,
    SlotSetting,
    fleet_prefix,
    release_pointer,
    slot_parameter,
)
from phoenix.platform.nag import AWS_CUSTOM_RESOURCE, skip_cdk_provider
from phoenix.platform.roles import parameter_arn

# The AWS SDK call that writes a parameter only if it does not exist yet.
_ALREADY_THERE = "ParameterAlreadyExists"


def ssm_reference(parameter_name: str) -> str:
    """A deploy-time dynamic reference: CloudFormation reads the value when it deploys."""
    return "{{resolve:ssm:" + parameter_name + "}}"


def initial_slot_settings(fleet: FleetConfig) -> dict[tuple[Slot, SlotSetting], str]:
    """What each slot starts with: blue serves everything at the configured minimum."""
    settings: dict[tuple[Slot, SlotSetting], str] = {
        ("blue", "min-size"): str(fleet.capacity.min),
        ("blue", "launch-template-version"): "1",
    }
    if fleet.strategy != "rolling":
        settings |= {
            ("blue", "weight"): "100",
            ("green", "min-size"): "0",
            ("green", "launch-template-version"): "1",
            ("green", "weight"): "0",
        }
    return settings


class ControllerState(Construct):
    """The SSM parameters that hold one fleet's controller-owned state.

    Created with the initial values (the release pointer at the bootstrap AMI, blue
    serving at the configured minimum, green idle) by create-only custom resources: no
    later deploy writes them, whatever changes in the config. An existing parameter is
    kept as it is (its value is the controller's), and deleting the stack deletes them.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment: str,
        fleet: FleetConfig,
        provider_role: iam.IRole,
        provider_logs: logs.ILogGroup,
        permissions: iam.Policy,
    ) -> None:
        super().__init__(scope, id)
        self._provider_role = provider_role
        self._provider_logs = provider_logs
        # The provider's policy (provider_permissions): in place before any call runs.
        self._permissions = permissions
        self._stack = Stack.of(self)
        self.release_pointer = release_pointer(environment, fleet.name)
        ami = fleet.initial_ami
        if ami.startswith("/"):
            ami = self._read_public_parameter("BootstrapAmi", ami)
        # Plain text, like every controller parameter: an `aws:ec2:image` parameter is
        # validated asynchronously with the writer's ec2:DescribeImages and silently not
        # written when that fails (docs/adr/0007-release-pointer-text.md).
        self._create("ReleasePointer", self.release_pointer, ami)
        self.slot_parameters: dict[tuple[Slot, SlotSetting], str] = {}
        for (slot, setting), value in initial_slot_settings(fleet).items():
            name = slot_parameter(environment, fleet.name, slot, setting)
            self.slot_parameters[(slot, setting)] = name
            self._create(f"{slot}-{setting}", name, value)
        skip_cdk_provider(
            self._stack,
            AWS_CUSTOM_RESOURCE,
            "CDK's AwsCustomResource provider for the controller's parameters, which calls "
            "only the SSM API (PutParameter, DeleteParameter, GetParameter).",
        )

    def _read_public_parameter(self, id: str, name: str) -> str:
        reader = cr.AwsCustomResource(
            self,
            id,
            on_create=cr.AwsSdkCall(
                service="SSM",
                action="GetParameter",
                parameters={"Name": name},
                physical_resource_id=cr.PhysicalResourceId.of(name),
                output_paths=["Parameter.Value"],
            ),
            install_latest_aws_sdk=False,
            role=self._provider_role,
            log_group=self._provider_logs,
        )
        reader.node.add_dependency(self._permissions)
        return reader.get_response_field("Parameter.Value")

    def _create(self, id: str, name: str, value: str) -> None:
        writer = cr.AwsCustomResource(
            self,
            id,
            on_create=cr.AwsSdkCall(
                service="SSM",
                action="PutParameter",
                parameters={
                    "Name": name,
                    "Value": value,
                    "Type": "String",
                    "DataType": "text",
                    "Overwrite": False,
                    "Description": "phoenix controller-owned state; written by releases only",
                },
                physical_resource_id=cr.PhysicalResourceId.of(name),
                ignore_error_codes_matching=_ALREADY_THERE,
            ),
            on_delete=cr.AwsSdkCall(
                service="SSM",
                action="DeleteParameter",
                parameters={"Name": name},
                ignore_error_codes_matching="ParameterNotFound",
            ),
            install_latest_aws_sdk=False,
            role=self._provider_role,
            log_group=self._provider_logs,
        )
        writer.node.add_dependency(self._permissions)


def provider_permissions(
    scope: Construct, environment: str, fleets: list[FleetConfig], role: iam.IRole
) -> iam.Policy:
    """The custom resources' calls for every fleet of a stack, in one policy whatever the
    number of fleets: write and delete the environment's controller parameters
    (`/phoenix/<env>/*`), read the public parameters that name bootstrap AMIs."""
    written = parameter_arn(scope, fleet_prefix(environment, "*"))
    statements = [
        iam.PolicyStatement(
            actions=["ssm:PutParameter", "ssm:DeleteParameter"], resources=[written]
        )
    ]
    public = sorted({f.initial_ami for f in fleets if f.initial_ami.startswith("/")})
    if public:
        read = [parameter_arn(scope, name, account="") for name in public]
        statements.append(iam.PolicyStatement(actions=["ssm:GetParameter"], resources=read))
    return iam.Policy(scope, "ProviderPermissions", roles=[role], statements=statements)
