"""What each fleet serves over simulated time: the data of the rehearsal report's charts.

A clock watcher (local.clock.watch: after every simulated minute and every Lambda
invocation) reads each fleet of the environment in play straight from moto's backends
(FleetView.peek: no request, so the calls a scenario counts stay its own) and keeps a
sample whenever a slot's weight or instances changed.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from local import clock
from local.embedded import REGION
from local.fleet_view import FleetView
from phoenix.config.environment import load_environment

FleetKey = tuple[str, str, str]  # environment, region, fleet


@dataclass(frozen=True)
class Sample:
    simulated: float  # simulated seconds since the rehearsal began
    weights: dict[str, int]  # slot -> percent of the listener's traffic
    instances: dict[str, dict[str, int]]  # slot -> AMI -> instances
    traffic: dict[str, float]  # AMI -> percent of the fleet's traffic it serves


class Sampler:
    """Keeps what each fleet of `environment` serves, each time it changes."""

    def __init__(self, config_dir: Path, environments: list[str]) -> None:
        self.fleets: dict[str, list[tuple[str, str]]] = {}
        for name in environments:
            config = load_environment(name, config_dir)
            self.fleets[name] = [
                (region or REGION, fleet.name)
                for region in config.regions
                for fleet in config.fleets
            ]
        self.environment = environments[0]
        self.samples: dict[FleetKey, list[Sample]] = defaultdict(list)
        self._lock = threading.Lock()

    def __call__(self) -> None:
        environment = self.environment
        for region, fleet in self.fleets[environment]:
            view = FleetView.peek(fleet, environment, region)
            sample = Sample(
                clock.elapsed(), view.weights, view.instances_by_slot, view.traffic_by_ami()
            )
            with self._lock:
                kept = self.samples[(environment, region, fleet)]
                if not kept or (kept[-1].weights, kept[-1].instances) != (
                    sample.weights,
                    sample.instances,
                ):
                    kept.append(sample)

    def between(self, key: FleetKey, began: float, ended: float) -> list[Sample]:
        """The fleet from `began` to `ended`: what it served at `began`, each change, and
        the last held to `ended` (a step chart's points)."""
        with self._lock:
            kept = list(self.samples.get(key, []))
        before = [s for s in kept if s.simulated <= began]
        within = [s for s in kept if began < s.simulated <= ended]
        points = [replace(before[-1], simulated=began)] if before else []
        points += within
        if points:
            points.append(replace(points[-1], simulated=ended))
        return points
