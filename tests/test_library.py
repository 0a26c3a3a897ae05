"""phoenix as a construct library: its wheel, and examples/own-app synthesized from it.

The wheel is built once and installed into a folder; the example is copied outside the
repository and synthesized with that folder on PYTHONPATH, so nothing it imports can
come from the checkout. One module fixture does both (7-10 s here).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "own-app"
# The interpreter running the tests is .venv's (make test), with aws-cdk-lib and setuptools.
PYTHON = sys.executable
# What a build reads is the working tree; what it must not copy is local state.
_NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "node_modules",
    "cdk.out*",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
)
EXPECTED_STACKS = {"shop-state", "shop"}


@dataclass(frozen=True)
class InstalledExample:
    source: Path  # the snapshot of the working tree the wheel was built from
    site: Path  # the wheel installed with pip --target
    outdir: Path  # the example's cloud assembly
    phoenix_file: str  # phoenix.__file__ as the example's interpreter imports it

    def stack_templates(self) -> dict[str, dict[str, Any]]:
        manifest = json.loads((self.outdir / "manifest.json").read_text())
        return {
            name: json.loads((self.outdir / artifact["properties"]["templateFile"]).read_text())
            for name, artifact in manifest["artifacts"].items()
            if artifact["type"] == "aws:cloudformation:stack"
        }

    def phoenix_functions(self) -> dict[str, tuple[str, Path]]:
        """Each phoenix Lambda function: its handler and its asset folder."""
        found = {}
        for stack, template in self.stack_templates().items():
            assets = json.loads((self.outdir / f"{stack}.assets.json").read_text())["files"]
            for name, resource in template["Resources"].items():
                handler = resource["Properties"].get("Handler", "")
                if resource["Type"] == "AWS::Lambda::Function" and handler.startswith("phoenix."):
                    asset = assets[resource["Properties"]["Code"]["S3Key"].removesuffix(".zip")]
                    found[name] = (handler, self.outdir / asset["source"]["path"])
        return found


def _run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            command, cwd=cwd, env=env, check=True, timeout=300, capture_output=True, text=True
        )
    except subprocess.CalledProcessError as err:
        # Output is captured to keep a passing run quiet; a failing one shows its tail.
        pytest.fail(f"{' '.join(command)} exited {err.returncode}:\n{err.stderr[-3000:]}")
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> InstalledExample:
    work = tmp_path_factory.mktemp("library")
    assert not work.is_relative_to(REPO), "the example must run outside the repository"
    # setuptools builds in the source tree (build/, phoenix.egg-info): from a snapshot of
    # the working tree, no file is left in the shared checkout and no stale build/lib
    # from an earlier build can slip removed modules into the wheel.
    source = work / "source"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCES)
    wheels, site = work / "wheels", work / "site"
    pip = [PYTHON, "-m", "pip", "--disable-pip-version-check"]
    offline = ["--no-deps", "--no-index"]
    _run(
        [*pip, "wheel", *offline, "--no-build-isolation", "-w", str(wheels), str(source)], cwd=work
    )
    (wheel,) = wheels.glob("phoenix-*.whl")
    _run([*pip, "install", *offline, "--no-compile", "--target", str(site), str(wheel)], cwd=work)

    app, outdir = work / "own-app", work / "cdk.out"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns("cdk.out", "__pycache__"))
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "CDK_OUTDIR": str(outdir),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    where = _run([PYTHON, "-c", "import phoenix; print(phoenix.__file__)"], cwd=app, env=env)
    _run([PYTHON, "app.py"], cwd=app, env=env)
    return InstalledExample(source=source, site=site, outdir=outdir, phoenix_file=where.strip())


def _files(root: Path, pattern: str) -> set[str]:
    return {
        p.relative_to(root).as_posix() for p in root.rglob(pattern) if "__pycache__" not in p.parts
    }


def test_the_wheel_installs_the_phoenix_package_and_nothing_else(
    installed: InstalledExample,
) -> None:
    top = {p.name for p in installed.site.iterdir()}
    assert top == {"phoenix", "phoenix-0.1.0.dist-info", "bin"}
    # and the `phoenix` command, its console script (docs/operations.md)
    assert [p.name for p in (installed.site / "bin").iterdir()] == ["phoenix"]


def test_the_wheel_holds_every_module_the_typing_marker_and_the_image_components(
    installed: InstalledExample,
) -> None:
    package, built = installed.site / "phoenix", installed.source / "phoenix"
    assert _files(package, "*.py") == _files(built, "*.py")
    assert (package / "py.typed").is_file()
    components = _files(package / "images" / "components", "*.yaml")
    assert components == _files(built / "images" / "components", "*.yaml")
    assert len(components) >= 5
    for runtime in ("kernel", "release/runtime", "release/handlers", "rollback/runtime"):
        assert (package / runtime / "__init__.py").is_file(), runtime


def test_the_example_imports_phoenix_from_the_installed_wheel(
    installed: InstalledExample,
) -> None:
    assert Path(installed.phoenix_file).is_relative_to(installed.site)


def test_the_example_synthesizes_its_stacks(installed: InstalledExample) -> None:
    templates = installed.stack_templates()
    assert set(templates) == EXPECTED_STACKS
    resources = {r["Type"] for t in templates.values() for r in t["Resources"].values()}
    assert {
        "AWS::KMS::Key",
        "AWS::EC2::VPC",
        "AWS::SNS::Topic",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "AWS::AutoScaling::AutoScalingGroup",
        "AWS::ImageBuilder::ImagePipeline",
        "AWS::StepFunctions::StateMachine",
        "AWS::DynamoDB::Table",
    } <= resources


def test_the_lambda_assets_hold_the_kernel(installed: InstalledExample) -> None:
    functions = installed.phoenix_functions()
    assert any(h.startswith("phoenix.rollback.") for h, _ in functions.values())
    for name, (_, asset) in functions.items():
        assert (asset / "phoenix" / "__init__.py").is_file(), name
        assert _files(asset / "phoenix" / "kernel", "*.py") >= {"__init__.py", "ledger.py"}, name


def test_every_function_asset_holds_its_handler_module(installed: InstalledExample) -> None:
    for name, (handler, asset) in installed.phoenix_functions().items():
        module = asset.joinpath(*handler.split(".")[:-1]).with_suffix(".py")
        assert module.is_file(), f"{name}: {handler} is not in its asset"


def test_cdk_nag_finds_nothing(installed: InstalledExample) -> None:
    report = json.loads((installed.outdir / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []


def _pins(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_package_depends_on_exactly_the_pinned_requirements() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = (REPO / "requirements.txt").read_text().splitlines()
    assert project["dependencies"] == _pins(requirements)
