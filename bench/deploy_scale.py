"""`cdk deploy` of an environment of many fleets into the embedded AWS.

config/sandbox.yaml's fleet copied to make N fleets (default 50; names get a number),
deployed by the real CDK CLI into the embedded AWS (`EmbeddedAws.deploy`). It then checks
what a deploy must leave: every stack complete, each fleet registered with the stack that
deploys it, each fleet's blue group at its minimum on the release pointer's AMI; and that
the release controller in the region's stack releases a fleet of the last fleet stack (a
release requested by hand, through the real state machine). Prints the stacks, their
resources and the seconds each part took; the last line:

    deploy: N fleets in S stacks deployed in T s; largest stack R resources;
            a release of <fleet> succeeded   (on one line)

    .venv/bin/python -m bench.deploy_scale [--fleets 50]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.quiet import logs_to_file
from local.embedded import EmbeddedAws

REPO = Path(__file__).resolve().parent.parent
BASE = REPO / "config" / "sandbox.yaml"


def config_with(fleets: int, folder: Path) -> list[str]:
    """sandbox.yaml with its fleet copied `fleets` times, written into `folder`."""
    config = yaml.safe_load(BASE.read_text())
    (fleet,) = config["fleets"]
    names = [f"web{n}" for n in range(fleets)]
    config["fleets"] = [fleet | {"name": name} for name in names]
    (folder / "sandbox.yaml").write_text(yaml.safe_dump(config))
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleets", type=int, default=50)
    fleets = parser.parse_args().fleets
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "config"
        folder.mkdir()
        names = config_with(fleets, folder)
        with logs_to_file("deploy-scale") as log, EmbeddedAws() as aws:
            started = time.perf_counter()
            stacks = aws.deploy("sandbox", outdir=Path(work) / "cdk.out", config_dir=folder)
            deployed = time.perf_counter() - started
            sizes = _sizes(aws, stacks)
            registered = _registered(aws)
            _check(aws, names, stacks, registered)
            last = names[-1]
            # an AMI no pipeline of the environment baked: no fleet releases it by itself
            baked = aws.bake(pipeline="scratch", version="9.0.0")
            started = time.perf_counter()
            execution = aws.request_release(last, baked.ami, requested_by="bench")
            released = time.perf_counter() - started
            pointer = aws.client("ssm").get_parameter(Name=f"/phoenix/sandbox/{last}/ami")
    for stack, size in sizes.items():
        print(f"{stack:>40} {size:>5} resources")
    print(f"handler logs in {log}")
    status = execution["status"]
    where = registered[last]
    print(
        f"deployed in {deployed:.1f} s; release of {last} ({where}): {status} in {released:.1f} s"
    )
    if status != "SUCCEEDED" or pointer["Parameter"]["Value"] != baked.ami:
        print(f"deploy: the release of {last} did not succeed ({status})")
        return 1
    print(
        f"deploy: {fleets} fleets in {len(stacks)} stacks deployed in {deployed:.0f} s; "
        f"largest stack {max(sizes.values())} resources; a release of {last} succeeded"
    )
    return 0


def _sizes(aws: EmbeddedAws, stacks: list[str]) -> dict[str, int]:
    cloudformation = aws.client("cloudformation")
    return {
        stack: len(cloudformation.describe_stack_resources(StackName=stack)["StackResources"])
        for stack in stacks
    }


def _registered(aws: EmbeddedAws) -> dict[str, str]:
    """Fleet -> the stack its registry spec names."""
    pages = aws.client("ssm").get_paginator("get_parameters_by_path")
    specs = [
        json.loads(parameter["Value"])
        for page in pages.paginate(Path="/phoenix-fleets/sandbox")
        for parameter in page["Parameters"]
    ]
    return {spec["name"]: spec["stack"] for spec in specs}


def _check(
    aws: EmbeddedAws, names: list[str], stacks: list[str], registered: dict[str, str]
) -> None:
    """Every fleet registered once, by a deployed stack; each blue group at its minimum."""
    assert sorted(registered) == sorted(names), "every fleet is registered once"
    assert set(registered.values()) <= set(stacks), "by a deployed stack"
    pages = aws.client("autoscaling").get_paginator("describe_auto_scaling_groups")
    groups = {
        g["AutoScalingGroupName"]: g for page in pages.paginate() for g in page["AutoScalingGroups"]
    }
    for name in names:
        blue = groups[f"phoenix-sandbox-{name}-blue"]
        assert len(blue["Instances"]) == blue["MinSize"] > 0, name


if __name__ == "__main__":
    sys.exit(main())
