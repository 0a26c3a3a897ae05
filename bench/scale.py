"""How phoenix's synthesis grows with the number of fleets in one environment.

config/production.yaml's fleets copied to make 1, 10, 100 and 500 fleets (names get a
number), each environment synthesized as the CDK CLI runs the app (a fresh process with
CDK_OUTDIR). Per size: synthesis seconds, seconds per fleet, the most resources in any
stack (CloudFormation allows 500), the largest Lambda environment (Lambda allows 4 KB:
names and values as synthesized, an intrinsic counted as its JSON), the largest state
machine definition, and the largest inline policy of a role (IAM allows 10,240 characters
of inline policy per role; counted as the policies' JSON without whitespace, an intrinsic
as its JSON). A size that does not synthesize is reported with CDK's reason, and
the larger ones are not tried.

    .venv/bin/python -m bench.scale [--sizes 1,10,100,500]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from bench.synth import app_environment

REPO = Path(__file__).resolve().parent.parent
BASE = REPO / "config" / "production.yaml"
CDK_CONTEXT = json.loads((REPO / "cdk.json").read_text()).get("context", {})


@dataclass(frozen=True)
class Measured:
    fleets: int
    seconds: float
    max_resources: int
    max_environment_bytes: int
    max_definition_bytes: int
    max_role_policy_bytes: int
    stacks: int = 0
    lint: str = ""  # cfn-lint's verdict on every template (largest size only)


def config_with(fleets: int, folder: Path) -> None:
    config = yaml.safe_load(BASE.read_text())
    base = config["fleets"]
    copies = []
    for n in range(fleets):
        fleet = dict(base[n % len(base)])
        fleet["name"] = f"{fleet['name'][:16]}{n}"
        copies.append(fleet)
    config["fleets"] = copies
    # production's plan over the copies: the first alone (one box), then the rest
    names = [fleet["name"] for fleet in copies]
    one_box, rest = config["plans"][0]["waves"]
    config["plans"][0]["waves"] = [
        one_box | {"fleets": names[:1]},
        *([rest | {"fleets": names[1:]}] if names[1:] else []),
    ]
    (folder / "production.yaml").write_text(yaml.safe_dump(config))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _definition(value: Any) -> str:
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_text(part) for part in parts)
    return _text(value)


def measure(outdir: Path, fleets: int, seconds: float) -> Measured:
    resources, environments, definitions = [0], [0], [0]
    policies: dict[str, int] = {}
    for path in outdir.glob("**/*.template.json"):
        template = json.loads(path.read_text())
        found = template.get("Resources", {})
        resources.append(len(found))
        for resource in found.values():
            properties = resource.get("Properties", {})
            if resource["Type"] == "AWS::Lambda::Function":
                variables = properties.get("Environment", {}).get("Variables", {})
                environments.append(sum(len(k) + len(_text(v)) for k, v in variables.items()))
            if resource["Type"] == "AWS::StepFunctions::StateMachine":
                definitions.append(len(_definition(properties.get("DefinitionString", ""))))
            if resource["Type"] == "AWS::IAM::Policy":
                size = len(_text(properties.get("PolicyDocument", {})))
                for role in properties.get("Roles", []):
                    key = f"{path.name}/{_text(role)}"
                    policies[key] = policies.get(key, 0) + size
    return Measured(
        fleets,
        seconds,
        max(resources),
        max(environments),
        max(definitions),
        max(policies.values(), default=0),
        stacks=len(resources) - 1,
    )


def lint(outdir: Path) -> str:
    """cfn-lint on every template, as `make synth` runs it: errors fail, warnings do not."""
    templates = sorted(str(p) for p in outdir.glob("**/*.template.json"))
    started = time.perf_counter()
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--non-zero-exit-code",
            "error",
            "--",
            *templates,
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    took = time.perf_counter() - started
    if result.returncode != 0:
        first = (result.stdout.strip().splitlines() or [f"exit {result.returncode}"])[0]
        return f"cfn-lint failed on {len(templates)} templates: {first}"
    return f"cfn-lint passed {len(templates)} templates in {took:.0f} s"


def synthesize(fleets: int, *, lint_templates: bool = False) -> Measured | str:
    """The measurements, or why synthesis failed (its last error line)."""
    with tempfile.TemporaryDirectory() as work:
        config, outdir = Path(work) / "config", Path(work) / "cdk.out"
        config.mkdir()
        config_with(fleets, config)
        # As the CDK CLI passes it: cdk.json's context (feature flags) and ours.
        context = {**CDK_CONTEXT, "env": "production", "config_dir": str(config)}
        environment = app_environment(str(outdir), context)
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, str(REPO / "app.py")],
            cwd=REPO,
            env=environment,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            lines = [line for line in result.stderr.splitlines() if "Error" in line]
            reason = (lines or result.stderr.splitlines() or [f"exit {result.returncode}"])[-1]
            # CDK's TooManyResourcesInStack goes on to count every resource type.
            return reason.split(": AWS::", 1)[0]
        measured = measure(outdir, fleets, elapsed)
        if lint_templates:
            measured = replace(measured, lint=lint(outdir))
        return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,500")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    header = ("fleets", "synth s", "s/fleet", "max res", "max env B", "max def B", "max pol B")
    print(" ".join(f"{name:>10}" for name in header))
    done: list[Measured] = []
    for fleets in sizes:
        outcome = synthesize(fleets, lint_templates=fleets == sizes[-1])
        if isinstance(outcome, str):
            print(f"{fleets:>10} does not synthesize: {outcome}")
            print(f"scale: synthesis fails at {fleets} fleets: {outcome}")
            return 1
        done.append(outcome)
        print(
            f"{fleets:>10} {outcome.seconds:>10.1f} {outcome.seconds / fleets:>10.2f} "
            f"{outcome.max_resources:>10} {outcome.max_environment_bytes:>10} "
            f"{outcome.max_definition_bytes:>10} {outcome.max_role_policy_bytes:>10}"
        )
    last = done[-1]
    print(f"{last.fleets} fleets: {last.stacks} stacks, cdk-nag passed (app.py), {last.lint}")
    if not last.lint.startswith("cfn-lint passed"):
        print(f"scale: {last.fleets} fleets synthesized but do not lint")
        return 1
    print(
        f"scale: {last.fleets} fleets synthesized; max resources per stack "
        f"{last.max_resources}; max Lambda environment {last.max_environment_bytes} bytes; "
        f"{last.seconds / last.fleets:.2f} s per fleet"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
