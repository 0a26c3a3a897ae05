"""AWS's sample events (tests/events) parse with the models phoenix reads them with."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from phoenix.release.runtime.events import (
    ImageStateChange,
    InstanceRefreshEvent,
    ReleaseRequested,
    StackStatusChange,
)
from tests.sample_events import sample_event

IMAGE = sample_event("imagebuilder_image_available")
REQUESTED = sample_event("phoenix_release_requested")
REFRESH = sample_event("autoscaling_instance_refresh_succeeded")
ALARM = sample_event("cloudwatch_alarm_state_change")
STACK = sample_event("cloudformation_stack_status_change")


def test_the_aws_sample_events_parse_with_the_project_s_models() -> None:
    assert ImageStateChange.model_validate(IMAGE).detail.state.status == "AVAILABLE"
    assert ReleaseRequested.model_validate(REQUESTED).detail.fleet == "web"
    stack = StackStatusChange.model_validate(STACK).detail
    assert (stack.stack_id, stack.status_details.status) == (
        STACK["resources"][0],
        "CREATE_COMPLETE",
    )
    refresh = InstanceRefreshEvent.model_validate(REFRESH)
    assert (refresh.detail_type, refresh.detail.group) == (
        REFRESH["detail-type"],
        REFRESH["detail"]["AutoScalingGroupName"],
    )
    # phoenix has no model of its own for alarm events: the envelope its models extend
    alarm = EventBridgeModel.model_validate(ALARM).detail
    assert isinstance(alarm, dict)
    assert alarm["state"]["value"] == "ALARM"
