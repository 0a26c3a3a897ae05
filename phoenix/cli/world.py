"""What the `phoenix` command talks to: AWS through boto3 (so `AWS_ENDPOINT_URL`,
`AWS_REGION`, `--region` and `--profile` work as they do for the AWS CLI), and the
environment's controller, found from its record (phoenix/platform/record.py)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from phoenix.kernel.events import DetailType, EventNotAcceptedError, put
from phoenix.kernel.names import environment_record
from phoenix.kernel.registry import read_registry

RECORDS = "/phoenix-environments/"
# botocore's standard retry mode: throttling and transient errors retried with backoff.
RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})


class CliError(Exception):
    """Bad input or nothing to do: one line for the person, exit code 2, nothing changed."""


@dataclass(frozen=True)
class Environment:
    """An environment's controller in one region (its record)."""

    name: str
    table: str
    state_machine: str
    topic: str


class World:
    """boto3 clients of one session, and the environment (`--env`, or the only one)."""

    def __init__(self, *, env: str | None, region: str | None, profile: str | None) -> None:
        try:
            # AWS_REGION as the AWS CLI reads it, before boto3's AWS_DEFAULT_REGION
            region = region or os.environ.get("AWS_REGION") or None
            self.session = boto3.Session(profile_name=profile, region_name=region)
        except BotoCoreError as error:
            raise CliError(str(error)) from None
        if not self.session.region_name:
            raise CliError("no region: pass --region or set AWS_REGION")
        self._env = env

    def client(self, service: str) -> Any:
        return self.session.client(service, config=RETRIES)  # type: ignore[call-overload]

    @cached_property
    def environment(self) -> Environment:
        ssm = self.client("ssm")
        name = self._env
        if name is None:
            pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=RECORDS)
            names = sorted(p["Name"][len(RECORDS) :] for page in pages for p in page["Parameters"])
            if len(names) != 1:
                found = ", ".join(names) or "none"
                raise CliError(f"--env is needed: environments here are {found}")
            name = names[0]
        try:
            value = ssm.get_parameter(Name=environment_record(name))["Parameter"]["Value"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
                raise CliError(f"no environment {name!r} in {self.session.region_name}") from None
            raise
        record = json.loads(value)
        return Environment(
            name=name,
            table=record["table"],
            state_machine=record["state_machine"],
            topic=record["topic"],
        )

    @cached_property
    def fleets(self) -> dict[str, dict[str, Any]]:
        """The environment's fleet specs from its registry, by name."""
        return read_registry(self.client("ssm"), self.environment.name)

    def fleet(self, name: str) -> dict[str, Any]:
        spec = self.fleets.get(name)
        if spec is None:
            known = ", ".join(sorted(self.fleets)) or "none"
            raise CliError(f"no fleet {name!r} in {self.environment.name} (fleets: {known})")
        return spec

    @cached_property
    def caller(self) -> str:
        """Who asks: the caller's identity (STS GetCallerIdentity), never typed text."""
        return str(self.client("sts").get_caller_identity()["Arn"])

    def put(self, detail_type: DetailType, detail: dict[str, Any]) -> str:
        """One `phoenix` event on the default bus; its id."""
        try:
            return put(self.client("events"), detail_type, detail)
        except EventNotAcceptedError as refused:
            raise CliError(f"EventBridge refused {detail_type}: {refused}") from None
