"""The embedded AWS: moto plus what phoenix needs that moto lacks (see docs/rehearsal.md)."""

from __future__ import annotations

from local import (
    alarm_events,
    application,
    cloudformation,
    eventbridge,
    imagebuilder,
    instance_refresh,
    lambda_dispatch,
)


def install_extensions(endpoint: str | None = None) -> None:
    """Apply every extension to moto in this process; `endpoint` is the server's URL."""
    cloudformation.install(endpoint)
    lambda_dispatch.install()
    eventbridge.install()
    alarm_events.install()
    instance_refresh.install()
    imagebuilder.install()
    application.install()
