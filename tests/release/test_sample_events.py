"""AWS's sample events (tests/events) parse with the models phoenix reads them with."""

from __future__ import annotations

import json
from pathlib import Path

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from phoenix.release.runtime.events import (
    ImageStateChange,
    InstanceRefreshEvent,
    ReleaseRequested,
    StackStatusChange,
)

EVENTS = Path(__file__).resolve().parents[1] / "events"
IMAGE = json.loads((EVENTS / "imagebuilder_image_available.json").read_text())
REQUESTED = json.loads((EVENTS / "phoenix_release_requested.json").read_text())
REFRESH = json.loads((EVENTS / "autoscaling_instance_refresh_succeeded.json").read_text())
ALARM = json.loads((EVENTS / "cloudwatch_alarm_state_change.json").read_text())
STACK = json.loads((EVENTS / "cloudformation_stack_status_change.json").read_text())


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
