"""AWS clients for a handler, made on first use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Clients:
    """boto3 clients made on first use (a path imports and builds only what it calls),
    with botocore's standard retry mode: throttling and transient errors are retried."""

    def __init__(self, region: str, factory: Callable[..., Any] | None = None) -> None:
        self._region = region
        self._factory = factory
        self._made: dict[str, Any] = {}

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        if service not in self._made:
            self._made[service] = self._make(service)
        return self._made[service]

    def _make(self, service: str) -> Any:
        if self._factory is not None:
            return self._factory(service)
        import boto3  # noqa: PLC0415 - lazily: a handler that fails validation never pays
        from botocore.config import Config  # noqa: PLC0415

        retries = Config(retries={"mode": "standard", "max_attempts": 5})
        return boto3.client(service, region_name=self._region or None, config=retries)

    def provide(self, service: str, client: Any) -> None:
        """Use `client` for `service` (tests: a Stubber-wrapped or moto client)."""
        self._made[service] = client
