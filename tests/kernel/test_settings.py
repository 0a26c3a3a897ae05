"""Function settings travel through environment variables and come back typed."""

from __future__ import annotations

import json

import pytest
from pydantic import Json, ValidationError

from phoenix.kernel.settings import FunctionSettings


class LedgerSettings(FunctionSettings):
    table_name: str
    lock_ttl_seconds: int = 900


def test_settings_round_trip_through_the_environment() -> None:
    settings = LedgerSettings(
        environment="sandbox", service_name="phoenix-ledger", table_name="t", lock_ttl_seconds=60
    )
    environment = settings.to_environment()
    assert environment["PHOENIX_TABLE_NAME"] == "t"
    assert environment["PHOENIX_LOCK_TTL_SECONDS"] == "60"
    assert LedgerSettings.from_environ(environment) == settings


def test_a_missing_setting_is_an_error_naming_the_variable() -> None:
    with pytest.raises(ValidationError, match="PHOENIX_TABLE_NAME"):
        LedgerSettings.from_environ(
            {"PHOENIX_ENVIRONMENT": "sandbox", "POWERTOOLS_SERVICE_NAME": "phoenix-ledger"}
        )


def test_a_wrongly_typed_setting_is_an_error() -> None:
    with pytest.raises(ValidationError, match="PHOENIX_LOCK_TTL_SECONDS"):
        LedgerSettings.from_environ(
            {
                "PHOENIX_ENVIRONMENT": "sandbox",
                "POWERTOOLS_SERVICE_NAME": "phoenix-ledger",
                "PHOENIX_TABLE_NAME": "t",
                "PHOENIX_LOCK_TTL_SECONDS": "soon",
            }
        )


class SubscriptionSettings(FunctionSettings):
    subscriptions: Json[dict[str, list[str]]]
    retries: int = 2


def test_structured_settings_travel_as_json() -> None:
    settings = SubscriptionSettings(
        environment="sandbox",
        service_name="phoenix-trigger",
        subscriptions='{"phoenix-sandbox-golden": ["web"]}',
    )
    environment = settings.to_environment()
    assert json.loads(environment["PHOENIX_SUBSCRIPTIONS"]) == {"phoenix-sandbox-golden": ["web"]}
    assert environment["PHOENIX_RETRIES"] == "2"
    assert SubscriptionSettings.from_environ(environment) == settings
