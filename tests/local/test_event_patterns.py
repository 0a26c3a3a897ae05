"""Event patterns on a field of the objects of an array (local/event_patterns.py), as the
EventBridge user guide's "Arrays in Amazon EventBridge event patterns" says."""

from __future__ import annotations

import json
from typing import Any

from moto.events.models import EventPattern

from local import event_patterns

PATTERN = {"detail": {"status": ["ACTIVE"], "resources": {"type": ["AWS_EC2_INSTANCE"]}}}


def _matches(resources: list[object], status: str = "ACTIVE") -> bool:
    event_patterns.install()
    event: Any = {"detail": {"status": status, "resources": resources}}
    return bool(EventPattern.load(json.dumps(PATTERN)).matches_event(event))


def test_a_field_of_an_object_in_an_array_matches_when_any_object_has_it() -> None:
    assert _matches([{"type": "AWS_ECR_CONTAINER_IMAGE"}, {"type": "AWS_EC2_INSTANCE"}])
    assert _matches([{"type": "AWS_EC2_INSTANCE", "details": {"awsEc2Instance": {}}}])


def test_it_does_not_match_when_no_object_has_it_or_another_field_differs() -> None:
    assert not _matches([{"type": "AWS_ECR_CONTAINER_IMAGE"}])
    assert not _matches([])
    assert not _matches([{"type": "AWS_EC2_INSTANCE"}], status="CLOSED")
