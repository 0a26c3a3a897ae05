"""One embedded AWS for the integration modules that use the same environment.

Deploying the sandbox takes a fair share of a test run, so the modules that release to
tests/integration/config's sandbox share one deployment, in the order pytest runs them;
a module with another environment (its own `EmbeddedAws`) ends the shared one first.
Those modules (OWN_ENVIRONMENT) run after all the others, so the sandbox is deployed
once. Each module leaves the fleets serving (its tests assert it), so the next one
starts from a working fleet.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.embedded import EmbeddedAws

CONFIG = Path(__file__).resolve().parent / "config"
# The modules that deploy an environment of their own, in their own embedded AWS.
OWN_ENVIRONMENT = ("test_chaos.py", "test_disaster_recovery.py", "test_plan.py")
# The shared sandbox's modules that put it through faulty deliveries and releases: after the
# others, so that those start from the releases they expect. The report's module comes
# last: the application model's noise is one seeded sequence, so a module's releases
# change the draws of every module after it, and a healthy canary step can fail its
# judgment on a draw (docs/judgment.md: false positives 2.0%).
LAST_OF_SHARED = (
    "test_delivery.py",
    "test_faults.py",
    "test_report.py",
    "test_drift.py",
    "test_vulnerabilities.py",
    "test_retention.py",
    "test_drills.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The shared sandbox's modules first, in pytest's order (the faults and chaos last);
    then the others."""
    items.sort(
        key=lambda item: (
            item.path.name in OWN_ENVIRONMENT,
            item.path.name in LAST_OF_SHARED,
            LAST_OF_SHARED.index(item.path.name) if item.path.name in LAST_OF_SHARED else 0,
        )
    )


class SharedSandbox:
    def __init__(self, outdir: pytest.TempPathFactory) -> None:
        self._outdir = outdir
        self._aws: EmbeddedAws | None = None

    def get(self) -> EmbeddedAws:
        if self._aws is None:
            aws = EmbeddedAws().start()
            aws.deploy("sandbox", outdir=self._outdir.mktemp("cdk.out"), config_dir=CONFIG)
            self._aws = aws
        return self._aws

    def end(self) -> None:
        if self._aws is not None:
            self._aws.stop()
            self._aws = None


@pytest.fixture(scope="session")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedSandbox]:
    shared = SharedSandbox(tmp_path_factory)
    yield shared
    shared.end()


@pytest.fixture(scope="module")
def aws(shared_sandbox: SharedSandbox) -> EmbeddedAws:
    """The sandbox deployed with one fleet per strategy, shared by the modules."""
    return shared_sandbox.get()
