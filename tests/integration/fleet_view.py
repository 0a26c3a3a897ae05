"""What a fleet looks like in the embedded AWS: through the APIs, and (for the capacity
watch, which runs inside the embedded AWS between steps) straight from moto's backends."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from local import clock
from local.embedded import EmbeddedAws
from local.reliability import serving_capacity


def request_release(aws: EmbeddedAws, fleet: str, ami: str) -> dict[str, Any]:
    """Put a `Release Requested` event, wait for the release to end, return its execution."""
    return aws.request_release(fleet, ami, requested_by="tests")


@dataclass
class CapacityWatch:
    """Serving capacity all through a release: healthy running instances in slots whose
    target group gets traffic, seen after every simulated minute and every step."""

    fleet: str
    required: int
    seen: list[int] = field(default_factory=list)

    def __enter__(self) -> CapacityWatch:
        self._stop = clock.watch(self.look)
        self.look()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop()
        self.look()

    @property
    def lowest(self) -> int:
        return min(self.seen)

    def look(self) -> None:
        self.seen.append(serving_capacity(self.fleet))


def required_capacity(desired: int, min_healthy_percentage: int) -> int:
    return math.ceil(desired * min_healthy_percentage / 100)
