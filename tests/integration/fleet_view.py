"""What a fleet looks like in the embedded AWS: through the APIs, and (for the capacity
watch, which runs inside the embedded AWS between steps) straight from moto's backends."""

from __future__ import annotations

import math
from typing import Any

from local.embedded import EmbeddedAws
from local.reliability import CapacityWatch, serving_capacity

__all__ = ["CapacityWatch", "request_release", "required_capacity", "serving_capacity"]


def request_release(aws: EmbeddedAws, fleet: str, ami: str) -> dict[str, Any]:
    """Put a `Release Requested` event, wait for the release to end, return its execution."""
    return aws.request_release(fleet, ami, requested_by="tests")


def required_capacity(desired: int, min_healthy_percentage: int) -> int:
    return math.ceil(desired * min_healthy_percentage / 100)
