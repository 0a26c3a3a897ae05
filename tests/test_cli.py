"""`make synth` as a newcomer runs it: the real CDK CLI, in a shell without AWS credentials.

The other tests synthesize in-process; this one runs `npx cdk synth` in another process
with only PATH, a fresh HOME and the Makefile's quiet variables, so a template that needs
credentials, a profile or a context the CLI does not pass fails here (cdk-nag's findings
stop the synthesis: app.py adds AwsSolutionsChecks as a validation plugin). One CLI run
covers every config in config/ and a copy of production.yaml under another name in
another folder (`-c config_dir=...`), as the README tells users to make their own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from app import CONFIG_DIR
from phoenix.config.environment import available_environments

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
# What the Makefile exports to keep the CLI quiet and offline; nothing AWS but the switch
# that stops the SDKs probing the EC2 instance metadata endpoint for credentials.
QUIET = {
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "CDK_DISABLE_VERSION_CHECK": "1",
    "CDK_DISABLE_CLI_TELEMETRY": "true",
    "NPM_CONFIG_UPDATE_NOTIFIER": "false",
    "NPM_CONFIG_FUND": "false",
    "NPM_CONFIG_AUDIT": "false",
    "AWS_EC2_METADATA_DISABLED": "true",
}
# A user's own environment: production.yaml copied under another name, in another folder.
COPY = "staging"


def _run(command: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@dataclass(frozen=True, repr=False)  # a failure shows the CLI's output, not all of this
class CliSynthesis:
    result: subprocess.CompletedProcess[str]
    outdir: Path
    config_dir: Path
    environment: dict[str, str]  # what the CLI ran with


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> CliSynthesis:
    """One `npx cdk synth` of config/'s environments and the copy, without credentials."""
    npx = shutil.which("npx")
    assert npx, "the CDK CLI runs with npx (node)"
    home = tmp_path_factory.mktemp("home")
    folder = tmp_path_factory.mktemp("my-configs")
    for config in CONFIG_DIR.glob("*.yaml"):
        shutil.copy(config, folder / config.name)
    # The file name is the environment's name; a `name:` in the file must match it.
    production = yaml.safe_load((CONFIG_DIR / "production.yaml").read_text())
    (folder / f"{COPY}.yaml").write_text(yaml.safe_dump({**production, "name": COPY}))
    environment = {"PATH": os.environ["PATH"], "HOME": str(home), **QUIET}
    outdir = tmp_path_factory.mktemp("cdk.out.cli")
    environments = ",".join([*available_environments(CONFIG_DIR), COPY])
    context = ["-c", f"config_dir={folder}", "-c", f"env={environments}"]
    command = [npx, "cdk", "synth", "--quiet", *context, "**", "-o", str(outdir)]
    return CliSynthesis(_run(command, environment), outdir, folder, environment)


def test_the_environment_has_no_aws_credentials_or_profile(cli: CliSynthesis) -> None:
    assert [name for name in cli.environment if name.startswith("AWS_")] == [
        "AWS_EC2_METADATA_DISABLED"
    ]
    assert not (Path(cli.environment["HOME"]) / ".aws").exists()


def test_every_config_and_a_copy_elsewhere_synthesize_with_the_cdk_cli(cli: CliSynthesis) -> None:
    assert cli.result.returncode == 0, cli.result.stderr[-6000:]
    report = json.loads((cli.outdir / "validation-report.json").read_text())
    assert [(r["pluginName"], r["conclusion"]) for r in report["pluginReports"]] == [
        ("AwsSolutions", "success")
    ]
    manifest = json.loads((cli.outdir / f"assembly-{COPY}" / "manifest.json").read_text())
    stacks = {
        artifact["properties"]["stackName"]
        for artifact in manifest["artifacts"].values()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert f"phoenix-{COPY}" in stacks
    assert f"phoenix-{COPY}-state" in stacks
    assert all(name.startswith(f"phoenix-{COPY}") for name in stacks)
    for name in available_environments(CONFIG_DIR):
        assert list((cli.outdir / f"assembly-{name}").glob("*.template.json")), name


def test_make_synth_lints_and_summarizes_the_templates(cli: CliSynthesis) -> None:
    assert cli.result.returncode == 0, cli.result.stderr[-6000:]
    # config/'s environments, as `make synth` lints them (the copy's are production's
    # under other names): errors fail it, and no warning is printed beyond the accepted
    # ones .cfnlintrc.yaml ignores.
    templates = sorted(
        str(path)
        for name in available_environments(CONFIG_DIR)
        for path in (cli.outdir / f"assembly-{name}").glob("*.template.json")
    )
    lint = _run(
        [str(VENV_BIN / "cfn-lint"), "--non-zero-exit-code", "error", "--", *templates],
        cli.environment,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout == "", lint.stdout
    summary = _run(
        [sys.executable, "-m", "phoenix.platform.summary", str(cli.outdir), str(cli.config_dir)],
        cli.environment,
    )
    assert summary.returncode == 0, summary.stderr
    for name in [*available_environments(CONFIG_DIR), COPY]:
        assert f"environment {name}" in summary.stdout
