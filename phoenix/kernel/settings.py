"""Typed settings for every Lambda function, carried in its environment variables.

The infrastructure builds a settings object and turns it into the function's environment
(`to_environment`); the handler reads the same model back (`from_environ`). One model on
both sides means a setting cannot be renamed on one side and missed on the other, and
logic never reads `os.environ` itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


def metrics_namespace(environment: str) -> str:
    """The CloudWatch namespace of an environment's functions' metrics (Powertools)."""
    return f"Phoenix/{environment}"


def _phoenix_variable(field_name: str) -> str:
    return f"PHOENIX_{field_name.upper()}"


class FunctionSettings(BaseModel):
    """What every phoenix function knows; subclass it to add a function's own settings.

    A subclass field `table_name` travels as the variable `PHOENIX_TABLE_NAME`.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        alias_generator=_phoenix_variable,
    )

    environment: str
    service_name: str = Field(alias="POWERTOOLS_SERVICE_NAME")
    # `Phoenix/<environment>` unless given: two environments in one account and region
    # keep their metrics apart (the environment's dashboard reads its own)
    metrics_namespace: str = Field(default="", alias="POWERTOOLS_METRICS_NAMESPACE")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", alias="POWERTOOLS_LOG_LEVEL"
    )

    @model_validator(mode="after")
    def _namespace_of_the_environment(self) -> Self:
        if not self.metrics_namespace:
            object.__setattr__(self, "metrics_namespace", metrics_namespace(self.environment))
        return self

    def to_environment(self) -> dict[str, str]:
        """The function's environment variables (values may be CDK tokens at synthesis).

        Strings go as they are, anything else as JSON, which `from_environ` reads back.
        """
        values = self.model_dump(mode="json", by_alias=True, round_trip=True)
        return {
            name: value if isinstance(value, str) else json.dumps(value)
            for name, value in values.items()
        }

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Validate the settings from the process environment (or the mapping given)."""
        return cls.model_validate(dict(os.environ if environ is None else environ))


class ReleaseSettings(FunctionSettings):
    table_name: str
    # Set by the Lambda runtime (a reserved variable), never written by the infrastructure.
    region: str = Field(default="", alias="AWS_REGION", exclude=True)
