"""Summarize a synthesized cloud assembly: what `cdk deploy` would create.

python -m phoenix.platform.summary cdk.out config
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phoenix.config.environment import ConfigError, EnvironmentConfig, load_environment


@dataclass(frozen=True)
class StackSummary:
    name: str
    environment: str
    resources: Counter[str]


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def stacks_by_stage(outdir: Path) -> dict[str, list[StackSummary]]:
    """Each stage (environment) of the assembly with its stacks and their resource types."""
    stages: dict[str, list[StackSummary]] = {}
    for artifact in _read(outdir / "manifest.json").get("artifacts", {}).values():
        if artifact["type"] != "cdk:cloud-assembly":
            continue
        nested = outdir / artifact["properties"]["directoryName"]
        stage = artifact.get("displayName") or nested.name.removeprefix("assembly-")
        for stack in _read(nested / "manifest.json").get("artifacts", {}).values():
            if stack["type"] != "aws:cloudformation:stack":
                continue
            template = _read(nested / stack["properties"]["templateFile"])
            types = Counter(r["Type"] for r in template.get("Resources", {}).values())
            stages.setdefault(stage, []).append(
                StackSummary(
                    name=stack["properties"].get("stackName", stack["displayName"]),
                    environment=stack["environment"].removeprefix("aws://"),
                    resources=types,
                )
            )
    return stages


def describe_fleets(config: EnvironmentConfig) -> list[str]:
    lines = []
    for fleet in config.fleets:
        if fleet.strategy == "canary":
            how = "canary " + " > ".join(f"{step}%" for step in fleet.canary.steps)
        elif fleet.strategy == "blue_green":
            how = f"blue_green, old slot kept {fleet.blue_green.rollback_window_minutes} min"
        else:
            steps = ", ".join(f"{p}%" for p in fleet.rolling.checkpoint_percentages)
            how = f"rolling, checkpoints at {steps}"
        lines.append(
            f"{fleet.name}: {how}; {fleet.instance_type} x {fleet.capacity.min}-"
            f"{fleet.capacity.max}; images from {fleet.image_pipeline}"
        )
    return lines


def render(outdir: Path, config_dir: Path) -> str:
    out = [f"phoenix: what `cdk deploy` would create, from {outdir}/", ""]
    stages = stacks_by_stage(outdir)
    if not stages:
        return f"phoenix: no phoenix stacks in {outdir}/ (run `make synth` first)"
    for stage, stacks in sorted(stages.items()):
        out.append(f"environment {stage}")
        try:
            config = load_environment(stage, config_dir)
        except ConfigError:
            config = None
        if config is not None:
            out.append("  fleets:")
            out.extend(f"    {line}" for line in describe_fleets(config))
            out.append("  image pipelines:")
            out.extend(
                f"    {p.name}: v{p.version} {p.architecture}, keeps {p.keep_images} AMIs"
                for p in config.image_pipelines
            )
        out.append("  stacks:")
        for stack in stacks:
            total = sum(stack.resources.values())
            out.append(f"    {stack.name} ({stack.environment}): {total} resources")
            for kind, count in sorted(stack.resources.items(), key=lambda kv: (-kv[1], kv[0])):
                out.append(f"      {count:3d}  {kind}")
        out.append("")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    outdir = Path(argv[1] if len(argv) > 1 else "cdk.out")
    config_dir = Path(argv[2] if len(argv) > 2 else "config")
    if not (outdir / "manifest.json").is_file():
        print(f"phoenix: {outdir}/manifest.json not found; run `make synth` first", file=sys.stderr)
        return 1
    print(render(outdir, config_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
