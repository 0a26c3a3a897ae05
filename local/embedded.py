"""The embedded AWS: moto as a server on 127.0.0.1, with phoenix's extensions installed."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from types import TracebackType
from typing import Any

from moto.moto_api._internal.models import moto_api_backend
from moto.server import ThreadedMotoServer
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from local import (
    clock,
    cloudformation,
    eventbridge,
    install_extensions,
    lambda_environments,
    sim_time,
)
from local.imagebuilder import lifecycle
from local.status import describe_fleets
from phoenix.config.environment import load_environment
from phoenix.kernel.attributes import plain
from phoenix.kernel.clients import forget_clients
from phoenix.kernel.fleet_calls import ACTIVE_REFRESH_STATUSES
from phoenix.kernel.names import image_name

REPO = Path(__file__).resolve().parent.parent
# The repository's environments (app.py reads the same folder).
CONFIG_DIR = REPO / "config"
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
# How long settle() lets simulated time pass for instance refreshes still running.
SETTLE_REFRESHES_FOR = 2 * 3600.0


@dataclass(frozen=True)
class Baked:
    arn: str
    ami: str
    # The image's AMI in each region its distribution configuration reached.
    amis: dict[str, str] = field(default_factory=dict)


class DeployError(RuntimeError):
    """A deploy into the embedded AWS did not leave every stack complete."""


class EmbeddedAws:
    """moto's AWS on 127.0.0.1:`port` (0 picks a free port), for tests and rehearsals.

    Use it as a context manager, or `start()` and `stop()`. `deploy(env)` bootstraps the
    account and deploys an environment's synthesized stacks with the real CDK CLI, then
    checks that every stack is complete: the CLI's own success line is not trusted.
    """

    def __init__(self, *, port: int = 0, region: str = REGION) -> None:
        self.region = region
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.endpoint = ""

    def start(self) -> EmbeddedAws:
        # One line per request from werkzeug would bury everything else a user reads.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", message="Tried to parse AWS::S3::BucketPolicy")
        # One AWS per process at a time: what an earlier one deployed is forgotten.
        moto_api_backend.reset()
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        install_extensions(self.endpoint)
        # Handlers keep their clients between invocations, as in a warm Lambda execution
        # environment; this AWS is a new one, on a new endpoint.
        forget_clients()
        lambda_environments.forget_environments()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        return cloudformation.aws_client(service, self.region)

    def bake(
        self,
        environment: str = "sandbox",
        pipeline: str = "golden",
        health: str = "healthy",
        version: str = "1.0.0",
        *,
        distribute: bool = False,
        scan: str = "",
    ) -> Baked:
        """Bake an image as the pipeline would (CreateImage): its ARN and the AMI it made
        (with `distribute`, through the pipeline's distribution configuration, to every
        region it names); `scan`: what its Inspector scan finds (`failed`, or severities
        separated by commas)."""
        imagebuilder = self.client("imagebuilder")
        prefix = f"arn:aws:imagebuilder:{self.region}:{ACCOUNT}"
        name = image_name(environment, pipeline)
        distribution = (
            {"distributionConfigurationArn": f"{prefix}:distribution-configuration/{name}"}
            if distribute
            else {}
        )
        arn = imagebuilder.create_image(
            imageRecipeArn=f"{prefix}:image-recipe/{name}/{version}",
            infrastructureConfigurationArn=f"{prefix}:infrastructure-configuration/{name}",
            tags={"phoenix:health": health} | ({"phoenix:scan": scan} if scan else {}),
            **distribution,
        )["imageBuildVersionArn"]
        image = imagebuilder.get_image(imageBuildVersionArn=arn)["image"]
        eventbridge.drain()
        amis = {str(a["region"]): str(a["image"]) for a in image["outputResources"]["amis"]}
        return Baked(arn=str(arn), ami=amis.get(self.region, next(iter(amis.values()))), amis=amis)

    def status(self, environment: str = "sandbox") -> str:
        """What `python -m local status` prints."""
        return describe_fleets(self.client, environment)

    def advance(self, seconds: float = 60.0) -> None:
        """Let `seconds` of simulated time pass, a minute at a time: instance refreshes move
        on, and the application model serves a minute of traffic and evaluates alarms."""
        clock.advance(seconds)

    def run_image_lifecycle(self, later: timedelta = timedelta()) -> list[lifecycle.Execution]:
        """Run every enabled image lifecycle policy of this region once, as Image Builder
        does each day, `later` after the simulated now (a month is not waited for a
        minute at a time): local/imagebuilder/lifecycle.py."""
        return lifecycle.run(ACCOUNT, self.region, sim_time.utcnow() + later)

    def drain(self) -> None:
        """Wait until every event put on a bus so far has reached its targets."""
        eventbridge.drain()

    def request_release(
        self, fleet: str, ami: str, requested_by: str = "phoenix"
    ) -> dict[str, Any]:
        """Put a `Release Requested` event and wait for the release to end; its execution
        (as ListExecutions describes it)."""
        before = set(self.executions())
        self.start_release(fleet, ami, requested_by)
        self.settle()
        (new,) = [e for arn, e in self.executions().items() if arn not in before]
        return new

    def put(self, detail_type: str, detail: dict[str, Any]) -> str:
        """Put one `phoenix` event (a request or a decision) and deliver it; its id."""
        (entry,) = self.client("events").put_events(
            Entries=[{"Source": "phoenix", "DetailType": detail_type, "Detail": json.dumps(detail)}]
        )["Entries"]
        if "EventId" not in entry:
            raise RuntimeError(f"{detail_type} not accepted: {entry}")
        eventbridge.drain()
        return str(entry["EventId"])

    def start_release(self, fleet: str, ami: str, requested_by: str = "phoenix") -> None:
        """Put a `Release Requested` event and return at once (the release runs on)."""
        self.put("Release Requested", {"fleet": fleet, "ami": ami, "requested_by": requested_by})

    def held_step(self, fleet: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait (in real time) until the fleet's release holds a canary step for a
        person's decision; what it asks (the fleet item's `approval`, as plain values)."""
        from local.fleet_view import ledger_item  # noqa: PLC0415 (it imports this module)

        began = time.monotonic()
        deadline = began + timeout
        while True:
            held = ledger_item(self, f"FLEET#{fleet}", "FLEET").get("approval")
            if held:
                return plain(held["M"])
            if time.monotonic() > began + 1 and not self.running_releases():
                raise RuntimeError(f"{fleet}'s release ended without holding a step")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{fleet}'s release holds no step")
            eventbridge.drain()
            time.sleep(0.05)

    def executions(self) -> dict[str, dict[str, Any]]:
        """Every execution of every state machine here, by ARN."""
        return {listed["executionArn"]: listed for listed in self._listed_executions()}

    def _listed_executions(self, **filters: str) -> list[dict[str, Any]]:
        """ListExecutions of every state machine here, with `filters`. Every page: it
        returns at most 100 at a time (and executions started in the same simulated second
        have no defined order between pages)."""
        stepfunctions = self.client("stepfunctions")
        pages = stepfunctions.get_paginator("list_executions")
        return [
            listed
            for machine in stepfunctions.list_state_machines()["stateMachines"]
            for page in pages.paginate(stateMachineArn=machine["stateMachineArn"], **filters)
            for listed in page["executions"]
        ]

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.client("stepfunctions").get_execution_history(
            executionArn=execution_arn, maxResults=1000
        )["events"]
        return events

    def running_releases(self) -> list[str]:
        """The ARNs of executions still running, in every state machine here: read from
        moto's backend, not listed through the API, since settle asks ten times a second
        while the executions it waits for need the interpreter's time."""
        backend = stepfunctions_parser_backends[ACCOUNT][self.region]
        # the parser's executions (exec_arn, exec_status), typed as moto's older model
        executions: list[Any] = [e for m in backend.state_machines for e in m.executions]
        return [
            str(e.exec_arn) for e in executions if e.exec_status in (None, ExecutionStatus.RUNNING)
        ]

    def settle(self, timeout: float = 120.0) -> None:
        """Wait (in real time) until every event is delivered and no execution runs; then
        let simulated time pass, a minute at a time, while an instance refresh is still
        active (a stopped release's refresh rolls back on its own, as on AWS, and nothing
        else moves the clock), at most SETTLE_REFRESHES_FOR."""
        deadline = time.monotonic() + timeout
        while True:
            eventbridge.drain()
            running = self.running_releases()
            if not running:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"executions still running: {running}")
            time.sleep(0.1)
        waited = 0.0
        while self.active_refreshes() and waited < SETTLE_REFRESHES_FOR:
            self.advance(60)
            waited += 60
        eventbridge.drain()

    def active_refreshes(self) -> list[str]:
        """The groups with an instance refresh not yet ended (its latest one)."""
        autoscaling = self.client("autoscaling")
        groups = autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]
        active = []
        for group in groups:
            name = group["AutoScalingGroupName"]
            latest = autoscaling.describe_instance_refreshes(
                AutoScalingGroupName=name, MaxRecords=1
            )["InstanceRefreshes"]
            if latest and latest[0]["Status"] in ACTIVE_REFRESH_STATUSES:
                active.append(name)
        return active

    def cli_environment(self) -> dict[str, str]:
        """What the AWS CLI, boto3 or the CDK CLI need to talk to this endpoint."""
        port = self.endpoint.rsplit(":", 1)[1]
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            # moto reads a TemplateURL as path-style only when the host is "localhost".
            "AWS_ENDPOINT_URL_S3_FOR_CLOUDFORMATION": f"http://localhost:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "CDK_DISABLE_VERSION_CHECK": "1",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
            "AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE": "1",
            "NODE_NO_WARNINGS": "1",
        }

    def _cdk(self, *arguments: str, cwd: Path = REPO) -> None:
        environment = {**os.environ, **self.cli_environment()}
        # The CLI itself rather than `npx cdk`: npx adds a second node start to every call.
        command = [str(REPO / "node_modules" / ".bin" / "cdk"), *arguments]
        result = subprocess.run(
            command,
            cwd=cwd,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise DeployError(f"cdk {' '.join(arguments)} failed:\n{result.stderr[-4000:]}")

    def deploy(
        self,
        environment: str = "sandbox",
        *,
        outdir: Path | None = None,
        config_dir: Path | None = None,
    ) -> list[str]:
        """Bootstrap, then deploy every stack of `environment` (or of several, named as
        `cdk synth -c env=` takes them: `sandbox,waves`); return their names."""
        out = outdir or REPO / "cdk.out.local"
        context = ["-c", f"env={environment}"]
        if config_dir is not None:
            context += ["-c", f"config_dir={config_dir}"]
        names = [name.strip() for name in environment.split(",") if name.strip()]
        configs = [load_environment(name, config_dir or CONFIG_DIR) for name in names]
        regions = sorted({r or self.region for config in configs for r in config.regions})
        targets = [f"aws://{ACCOUNT}/{region}" for region in regions]
        # The app is synthesized once, while the targets are bootstrapped: bootstrap runs
        # outside the project (no cdk.json), so it does not synthesize the app a second time.
        with ThreadPoolExecutor(max_workers=2) as pool, TemporaryDirectory() as elsewhere:
            synth = pool.submit(self._cdk, "synth", "--quiet", *context, "--output", str(out))
            bootstrap = pool.submit(self._cdk, "bootstrap", *targets, cwd=Path(elsewhere))
            synth.result()
            bootstrap.result()
        self._cdk(
            "deploy",
            *(f"{name}/*" for name in names),
            "--app",
            str(out),
            "--require-approval",
            "never",
            "--method=direct",
            "--previous-parameters=false",
            "--concurrency",
            "1",
        )
        stacks = [
            stack
            for region in regions
            for stack in cloudformation.aws_client("cloudformation", region).describe_stacks()[
                "Stacks"
            ]
            if stack["StackName"].startswith(tuple(f"phoenix-{name}" for name in names))
        ]
        broken = {s["StackName"]: s["StackStatus"] for s in stacks}
        broken = {
            k: v for k, v in broken.items() if v not in {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
        }
        if not stacks or broken:
            raise DeployError(f"stacks not complete: {json.dumps(broken) or 'none deployed'}")
        return sorted(s["StackName"] for s in stacks)
