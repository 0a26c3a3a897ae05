#!/usr/bin/env python3
"""A platform team's own CDK app built on phoenix's constructs, configured in Python.

No YAML file and nothing of the phoenix repository but the installed `phoenix` package:

    pip install /path/to/phoenix
    npx cdk synth

One stack holds the environment's key, network, notifications, one canary fleet, the
pipeline that bakes its images, and the release orchestrator (with the alarm rollback).
A second stack holds the release controller's state and is deployed first.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from phoenix import (
    CanaryFleet,
    ControllerStateStack,
    EnvironmentConfig,
    EnvironmentKey,
    GoldenImagePipeline,
    ImagePipelineConfig,
    ImmutableFleet,
    LambdaConfig,
    Network,
    NetworkConfig,
    Observability,
    ReleaseOrchestrator,
    register_fleet,
)

# The same models a phoenix YAML file is validated into: a bad value fails here, at once.
CONFIG = EnvironmentConfig(
    name="shop",
    deletion_protection=False,  # an example: `cdk destroy` may remove it
    network=NetworkConfig(cidr="10.20.0.0/16"),
    functions=LambdaConfig(log_retention_days=30),
    image_pipelines=[ImagePipelineConfig(name="golden")],
    fleets=[
        CanaryFleet(
            name="web", strategy="canary", image_pipeline="golden", instance_type="t4g.small"
        )
    ],
)


class ShopStack(cdk.Stack):
    """What phoenix's PhoenixStack composes, here for one fleet and one image pipeline."""

    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, id, description=f"{config.name}: an immutable web fleet")
        key = EnvironmentKey(self, "Encryption", environment=config.name).key
        network = Network(
            self,
            "Network",
            config=config.network,
            key=key,
            log_retention_days=config.functions.log_retention_days,
        )
        observability = Observability(
            self,
            "Observability",
            environment=config.name,
            config=config.notifications,
            key=key,
            access_logs_retention_days=config.access_logs_retention_days,
        )
        (fleet_config,) = config.fleets
        fleet = ImmutableFleet(
            self,
            "Web",
            environment=config.name,
            config=fleet_config,
            vpc=network.vpc,
            vpc_cidr=config.network.cidr,
            key=key,
            access_logs=observability.access_logs,
            alarm_topic=observability.topic,
            deletion_protection=config.deletion_protection,
        )
        (pipeline_config,) = config.image_pipelines
        GoldenImagePipeline(
            self,
            "Images",
            environment=config.name,
            config=pipeline_config,
            vpc=network.vpc,
            key=key,
            topic=observability.topic,
            regions=[self.region],  # bake here; list more regions to copy the AMIs there
            access_logs=observability.access_logs,
        )
        # The fleet's entry in the registry the release controller reads (its spec)
        register_fleet(fleet)
        # Releases each baked image to the fleets that subscribe to its pipeline, and
        # rolls a fleet back when one of its alarms fires (its AlarmRollback).
        ReleaseOrchestrator(self, "Release", config=config, key=key)


# CDK's built-in CloudFormation validation only warns, and tripled this app's synthesis
# time; cdk-nag (below) and cfn-lint on the templates are the checks worth the wait.
app = cdk.App(builtin_cloud_formation_validation=False)
state = ControllerStateStack(app, "shop-state", config=CONFIG, env=None)
ShopStack(app, "shop", config=CONFIG).add_stack_dependency(
    state, "the fleet's launch templates and listener read the controller's parameters"
)
cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
app.synth()
