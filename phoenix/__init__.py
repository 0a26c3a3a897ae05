"""phoenix: immutable EC2 fleets on AWS, as a CDK construct library and its runtimes.

Compose the constructs in any CDK app:

    from phoenix import GoldenImagePipeline, ImmutableFleet, ReleaseOrchestrator

The constructs are imported on first use (PEP 562), not with the package: every Lambda
function ships this file with its component's runtime, and the runtime never loads
aws_cdk, which Lambda does not have.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from phoenix.config.environment import (
        EnvironmentConfig,
        ImagePipelineConfig,
        LambdaConfig,
        NetworkConfig,
        NotificationsConfig,
    )
    from phoenix.config.fleet import BlueGreenFleet, CanaryFleet, FleetConfig, RollingFleet
    from phoenix.fleet.controller_state import ControllerState
    from phoenix.fleet.immutable_fleet import ImmutableFleet
    from phoenix.images.pipeline import GoldenImagePipeline
    from phoenix.platform.encryption import EnvironmentKey
    from phoenix.platform.functions import PhoenixFunction
    from phoenix.platform.network import Network
    from phoenix.platform.observability import Observability
    from phoenix.release.ledger import ReleaseLedger
    from phoenix.release.orchestrator import ReleaseOrchestrator
    from phoenix.release.spec import register_fleet
    from phoenix.rollback.alarm_rollback import AlarmRollback
    from phoenix.stage import ControllerStateStack, PhoenixStack, PhoenixStage

# public name -> the module that defines it
_EXPORTS = {
    "AlarmRollback": "phoenix.rollback.alarm_rollback",
    "BlueGreenFleet": "phoenix.config.fleet",
    "CanaryFleet": "phoenix.config.fleet",
    "ControllerState": "phoenix.fleet.controller_state",
    "ControllerStateStack": "phoenix.stage",
    "EnvironmentConfig": "phoenix.config.environment",
    "EnvironmentKey": "phoenix.platform.encryption",
    "FleetConfig": "phoenix.config.fleet",
    "GoldenImagePipeline": "phoenix.images.pipeline",
    "ImagePipelineConfig": "phoenix.config.environment",
    "ImmutableFleet": "phoenix.fleet.immutable_fleet",
    "LambdaConfig": "phoenix.config.environment",
    "Network": "phoenix.platform.network",
    "NetworkConfig": "phoenix.config.environment",
    "NotificationsConfig": "phoenix.config.environment",
    "Observability": "phoenix.platform.observability",
    "PhoenixFunction": "phoenix.platform.functions",
    "PhoenixStack": "phoenix.stage",
    "PhoenixStage": "phoenix.stage",
    "ReleaseLedger": "phoenix.release.ledger",
    "ReleaseOrchestrator": "phoenix.release.orchestrator",
    "RollingFleet": "phoenix.config.fleet",
    "register_fleet": "phoenix.release.spec",
}

__all__ = [
    "AlarmRollback",
    "BlueGreenFleet",
    "CanaryFleet",
    "ControllerState",
    "ControllerStateStack",
    "EnvironmentConfig",
    "EnvironmentKey",
    "FleetConfig",
    "GoldenImagePipeline",
    "ImagePipelineConfig",
    "ImmutableFleet",
    "LambdaConfig",
    "Network",
    "NetworkConfig",
    "NotificationsConfig",
    "Observability",
    "PhoenixFunction",
    "PhoenixStack",
    "PhoenixStage",
    "ReleaseLedger",
    "ReleaseOrchestrator",
    "RollingFleet",
    "register_fleet",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'phoenix' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
