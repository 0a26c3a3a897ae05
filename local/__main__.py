"""The embedded AWS from the command line.

    python -m local serve [-c env=sandbox] [--port 4566] [--time-scale 60]
    python -m local status [-c env=sandbox] [--port PORT]
    python -m local bake [-c env=sandbox] [--pipeline golden] [--version 1.0.0]
                         [--health healthy|failing|erroring|degrading|flaky|cart|slow] [--port PORT]

Starts moto on 127.0.0.1 with phoenix's extensions, deploys the environment's
synthesized stacks into it with the real CDK CLI, prints the endpoint and the fleets,
and serves until Ctrl-C. Point boto3, the AWS CLI or `npx cdk` at it with the variables
it prints. `status` and `bake` talk to 127.0.0.1:PORT when --port is given, else to
AWS_ENDPOINT_URL (the SDKs' standard variable, one of those printed) when it is set,
else to 127.0.0.1:4566.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import get_args

from local.cloudformation import endpoint_client
from local.embedded import DeployError, EmbeddedAws
from local.imagebuilder import Health
from local.status import describe_fleets
from phoenix.kernel.names import image_name

DEFAULT_PORT = 4566
PORT_HELP = "the server's port on 127.0.0.1 (default: AWS_ENDPOINT_URL when set, else 4566)"


def _context(values: list[str]) -> dict[str, str]:
    context = {}
    for value in values:
        key, _, setting = value.partition("=")
        if not setting:
            raise SystemExit(f"phoenix: -c takes KEY=VALUE, got {value!r}")
        context[key] = setting
    return context


def server_endpoint(port: int | None) -> str:
    """Where `status` and `bake` find the server: --port when given, else the SDKs'
    AWS_ENDPOINT_URL when set, else the port `serve` listens on by default."""
    if port is not None:
        return f"http://127.0.0.1:{port}"
    return os.environ.get("AWS_ENDPOINT_URL") or f"http://127.0.0.1:{DEFAULT_PORT}"


def serve(environment: str, port: int, time_scale: float) -> int:
    started = time.monotonic()
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with EmbeddedAws(port=port) as aws:
        print(f"phoenix: embedded AWS on {aws.endpoint}; deploying {environment}...", flush=True)
        try:
            stacks = aws.deploy(environment)
        except DeployError as err:
            print(f"phoenix: deploy failed: {err}", file=sys.stderr)
            return 1
        print(f"phoenix: deployed {', '.join(stacks)} in {time.monotonic() - started:.1f} s")
        print(describe_fleets(aws.client, environment))
        print("Use it with:")
        for name, value in aws.cli_environment().items():
            if name.startswith("AWS_") and "SDK_JS" not in name:
                print(f"  export {name}={value}")
        print("phoenix: ready (Ctrl-C stops)", flush=True)
        # Simulated time: each real second lets `time_scale` seconds pass for what waits.
        while not stop.wait(1.0):
            aws.advance(time_scale)
    print("phoenix: stopped", flush=True)
    return 0


def bake(environment: str, pipeline: str, version: str, health: str, endpoint: str) -> int:
    """Ask the running embedded AWS to build an image (CreateImage), then show it."""
    imagebuilder = endpoint_client("imagebuilder", endpoint)
    prefix = "arn:aws:imagebuilder:us-east-1:123456789012"
    name = image_name(environment, pipeline)
    created = imagebuilder.create_image(
        imageRecipeArn=f"{prefix}:image-recipe/{name}/{version}",
        infrastructureConfigurationArn=f"{prefix}:infrastructure-configuration/{name}",
        tags={"phoenix:health": health},
    )
    image = imagebuilder.get_image(imageBuildVersionArn=created["imageBuildVersionArn"])["image"]
    (ami,) = image["outputResources"]["amis"]
    print(f"phoenix: baked {image['arn']} -> {ami['image']} ({health}); AVAILABLE event sent")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the embedded AWS with phoenix deployed")
    serve_parser.add_argument("-c", dest="context", action="append", default=[])
    serve_parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve_parser.add_argument("--time-scale", type=float, default=60.0)
    status_parser = commands.add_parser("status", help="print the fleets of a running server")
    status_parser.add_argument("-c", dest="context", action="append", default=[])
    status_parser.add_argument("--port", type=int, help=PORT_HELP)
    bake_parser = commands.add_parser(
        "bake", help="bake an AMI as the pipeline would, announcing it AVAILABLE"
    )
    bake_parser.add_argument("-c", dest="context", action="append", default=[])
    bake_parser.add_argument("--pipeline", default="golden")
    bake_parser.add_argument("--version", default="1.0.0")
    bake_parser.add_argument(
        "--health",
        choices=list(get_args(Health)),
        default="healthy",
    )
    bake_parser.add_argument("--port", type=int, help=PORT_HELP)
    arguments = parser.parse_args(argv)
    environment = _context(arguments.context).get("env", "sandbox")
    if arguments.command == "serve":
        return serve(environment, arguments.port, arguments.time_scale)
    endpoint = server_endpoint(arguments.port)
    if arguments.command == "bake":
        return bake(environment, arguments.pipeline, arguments.version, arguments.health, endpoint)
    print(describe_fleets(lambda service: endpoint_client(service, endpoint), environment))
    return 0


if __name__ == "__main__":
    sys.exit(main())
