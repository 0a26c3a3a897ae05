"""The primary region's rule that sends each baked image's AVAILABLE event to a disaster
recovery region's controller (phoenix/stage.py)."""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_events as events

from phoenix.config.environment import EnvironmentConfig
from phoenix.kernel.names import image_name
from phoenix.platform.undelivered import bus_target
from phoenix.release.runtime.events import IMAGE_STATE_CHANGE


def forward_images(stack: Stack, config: EnvironmentConfig, region: str) -> events.Rule:
    """Image Builder publishes `EC2 Image Builder Image State Change` only in the
    region that built the image, so a DR region's controller never hears of a new
    one by itself. This rule sends what the primary's own release trigger hears
    (the same pattern: AVAILABLE, this environment's images baked here) to
    `region`'s default bus, with the role EventBridge needs for a cross-Region
    event bus target, allowed PutEvents on that bus only (EventBridge user guide,
    "Sending and receiving events between AWS Regions"). One rule per DR region:
    a rule takes at most five targets."""
    bus = events.EventBus.from_event_bus_arn(
        stack,
        f"DefaultBus-{region}",
        stack.format_arn(
            service="events", region=region, resource="event-bus", resource_name="default"
        ),
    )
    rule = events.Rule(
        stack,
        f"ForwardImages-{region}",
        description=f"phoenix {config.name}: baked images, to {region}'s controller",
        event_pattern=events.EventPattern(
            source=["aws.imagebuilder"],
            detail_type=[IMAGE_STATE_CHANGE],
            detail={"state": {"status": ["AVAILABLE"]}},
        ),
        targets=[bus_target(stack, bus)],
    )
    images = [
        {
            "prefix": f"arn:{Aws.PARTITION}:imagebuilder:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
            f"image/{image_name(config.name, pipeline.name)}/"
        }
        for pipeline in config.image_pipelines
    ]
    # CDK types `resources` as exact strings; a prefix match needs the raw pattern.
    cfn = rule.node.default_child
    assert isinstance(cfn, events.CfnRule)
    cfn.add_property_override("EventPattern.resources", images)
    return rule
