"""A handler's AWS clients: one typed property per service, each made on first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from phoenix.kernel.clients import Clients, Service

REPO = Path(__file__).resolve().parents[2]
# Each service has a property of its name, but Lambda: its one client is `invoker(seconds)`,
# made for the wait it serves (a pre-traffic hook's invocation).
SERVICES = tuple(s for s in get_args(Service) if s != "lambda")


def test_a_client_is_made_on_first_use_only_and_then_kept() -> None:
    made: list[str] = []

    def factory(service: Service) -> object:
        made.append(service)
        return object()

    aws = Clients("us-east-1", factory=factory)
    assert made == []
    first = aws.ssm
    assert aws.ssm is first
    assert made == ["ssm"]


def test_every_service_has_its_property() -> None:
    clients = {service: object() for service in SERVICES}
    aws = Clients("us-east-1", factory=clients.__getitem__)
    for service in SERVICES:
        assert getattr(aws, service) is clients[service], service


def test_a_provided_client_is_used_without_the_factory() -> None:
    def factory(service: Service) -> object:
        raise AssertionError(f"made {service}")

    aws = Clients("us-east-1", factory=factory)
    dynamodb = object()
    aws.provide("dynamodb", dynamodb)
    assert aws.dynamodb is dynamodb


def test_no_client_by_any_other_name() -> None:
    aws = Clients("us-east-1")
    with pytest.raises(AttributeError):
        getattr(aws, "s3")  # noqa: B009 - an attribute Clients does not declare


def test_boto3_clients_retry_in_standard_mode_in_the_region() -> None:
    aws = Clients("eu-west-1")
    assert aws.elbv2.meta.region_name == "eu-west-1"
    retries = vars(aws.elbv2.meta.config)["retries"]  # botocore's stubs declare no attributes
    assert retries == {"mode": "standard", "total_max_attempts": 6}
    assert aws.stepfunctions.meta.service_model.service_name == "stepfunctions"


def test_the_handlers_run_without_the_type_stubs() -> None:
    # The stubs are a development dependency: the Lambda runtime has none.
    handlers = [
        "phoenix.rollback.runtime.handler",
        *(
            f"phoenix.release.handlers.{path.stem}"
            for path in (REPO / "phoenix" / "release" / "handlers").glob("*.py")
            if path.stem != "__init__"
        ),
    ]
    probe = (
        "import importlib, sys\n"
        "class NoStubs:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith(('types_boto3', 'botocore_stubs', 'mypy_boto3')):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, NoStubs())\n"
        f"for name in {sorted(handlers)!r}: importlib.import_module(name)\n"
        "from phoenix.kernel.clients import Clients\n"
        "aws = Clients('us-east-1')\n"
        f"for service in {list(SERVICES)!r}: getattr(aws, service)\n"
        "aws.invoker(60)\n"
        "print(sorted(m for m in sys.modules if 'stubs' in m or m.startswith('types_boto3')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env={"PATH": "", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == "[]"
