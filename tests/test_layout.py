"""The package's boundaries: runtimes never load the CDK, constructs never import a
handler, each Lambda asset holds its component's runtime and the kernel only, and the
layout change left every stateful resource's logical id as it was."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms

import phoenix
from phoenix.config.environment import LambdaConfig
from phoenix.kernel.settings import FunctionSettings
from phoenix.platform.functions import PACKAGE_DIR, RUNTIME_FOLDERS, PhoenixFunction
from tests.code import module_file, modules_reached
from tests.conftest import SynthesizedApp

REPO = Path(__file__).resolve().parents[1]
# Every stateful resource's logical id, as synthesized before the package layout (issue
# 11): a renamed construct id would replace the resource on the next deploy.
BEFORE = REPO / "tests" / "fixtures" / "stateful_logical_ids.json"
CDK_PACKAGES = ("aws_cdk", "constructs", "cdk_nag", "jsii")
HANDLERS = {
    "phoenix.rollback.runtime.handler",
    *(
        f"phoenix.release.handlers.{path.stem}"
        for path in (PACKAGE_DIR / "release" / "handlers").glob("*.py")
        if path.stem != "__init__"
    ),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _is_runtime(module: str) -> bool:
    parts = module.split(".")
    return parts[:2] == ["phoenix", "kernel"] or (len(parts) > 2 and parts[2] in RUNTIME_FOLDERS)


MODULES = sorted(_module_name(p) for p in PACKAGE_DIR.rglob("*.py"))
RUNTIME = [m for m in MODULES if _is_runtime(m)]
CONSTRUCTS = [m for m in MODULES if not _is_runtime(m) and m != "phoenix"]


@pytest.mark.parametrize("module", RUNTIME)
def test_no_runtime_module_imports_the_cdk(module: str) -> None:
    path = module_file(module)
    assert path is not None
    cdk_imports = {i for i in _imports(path) if i.split(".")[0] in CDK_PACKAGES}
    assert cdk_imports == set(), module


@pytest.mark.parametrize("module", CONSTRUCTS)
def test_no_construct_imports_a_handler(module: str) -> None:
    path = module_file(module)
    assert path is not None
    assert _imports(path) & HANDLERS == set(), module


@pytest.mark.parametrize("handler", sorted(HANDLERS))
def test_a_handler_reaches_only_its_components_runtime_and_the_kernel(handler: str) -> None:
    component = handler.split(".")[1]
    reached = {_module_name(path) for path in modules_reached(handler)}
    own = ("phoenix.kernel", f"phoenix.{component}.")
    assert {m for m in reached if not (_is_runtime(m) and m.startswith(own))} == set()


def test_importing_every_handler_loads_no_cdk_module() -> None:
    # In a fresh interpreter, as Lambda imports a handler (the package's __init__ included)
    probe = (
        "import importlib, sys\n"
        f"for name in {sorted(HANDLERS)!r}: importlib.import_module(name)\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {CDK_PACKAGES!r})\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == "[]"


def test_the_public_api_names_what_a_cdk_app_composes() -> None:
    for name in ("ImmutableFleet", "GoldenImagePipeline", "ReleaseOrchestrator"):
        assert name in phoenix.__all__
    for name in phoenix.__all__:
        assert getattr(phoenix, name).__name__ in {name, "Annotated"}, name


# --- assets ---------------------------------------------------------------------------


def _asset_hashes(package_dir: Path, outdir: Path) -> dict[str, str]:
    """The S3 key of each function's code, synthesizing a stack with one release step
    function and the rollback function built from `package_dir`."""
    app = cdk.App(outdir=str(outdir), builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "Assets", env=cdk.Environment(region="eu-west-1"))
    key = kms.Key(stack, "Key")
    handlers = {
        "Gate": "phoenix.release.handlers.gate.lambda_handler",
        "Rollback": "phoenix.rollback.runtime.handler.lambda_handler",
    }
    for id, handler in handlers.items():
        PhoenixFunction(
            stack,
            id,
            name=id.lower(),
            handler=handler,
            description=id,
            settings=FunctionSettings(environment="test", service_name=id),
            config=LambdaConfig(),
            key=key,
            package_dir=package_dir,
        )
    template = app.synth().get_stack_artifact("Assets").template
    return {
        id: template["Resources"][logical]["Properties"]["Code"]["S3Key"]
        for logical in template["Resources"]
        for id in handlers
        if logical.startswith(id) and template["Resources"][logical]["Type"].endswith("Function")
    }


def test_changing_the_gate_logic_leaves_the_rollback_asset_unchanged(tmp_path: Path) -> None:
    # Given the package as it is, and a copy whose canary gate logic differs
    copy = tmp_path / "changed" / "phoenix"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    gate = copy / "release" / "runtime" / "gate.py"
    gate.write_text(gate.read_text() + "\n# a changed gate\n")

    # When both are synthesized
    before = _asset_hashes(PACKAGE_DIR, tmp_path / "before.out")
    after = _asset_hashes(copy, tmp_path / "after.out")

    # Then only the release's asset changed
    assert after["Gate"] != before["Gate"]
    assert after["Rollback"] == before["Rollback"]


def test_every_function_of_the_app_ships_its_own_handler(synthesized: SynthesizedApp) -> None:
    # CDK reuses a bundle between assets it takes for the same: each component's must
    # still hold that component's handler (a reused release bundle has no rollback code)
    checked = 0
    for artifact in synthesized.stack_artifacts():
        folder = Path(artifact.assembly.directory)
        manifest = json.loads((folder / f"{artifact.id}.assets.json").read_text())
        for resource in artifact.template["Resources"].values():
            properties = resource.get("Properties", {})
            handler = properties.get("Handler", "")
            if resource["Type"] != "AWS::Lambda::Function" or not handler.startswith("phoenix."):
                continue
            asset = manifest["files"][properties["Code"]["S3Key"].removesuffix(".zip")]
            code = folder / asset["source"]["path"]
            module = code.joinpath(*handler.split(".")[:-1]).with_suffix(".py")
            assert module.is_file(), f"{artifact.stack_name}: {handler} not in {code.name}"
            checked += 1
    assert checked >= 9


# --- deployed resources keep their ids ------------------------------------------------


def test_stateful_resources_keep_their_logical_ids(synthesized: SynthesizedApp) -> None:
    # Every stateful resource recorded before is still there under the same logical id
    # (a renamed or removed one would be replaced or deleted on the next deploy); new
    # ones (a new function's log group, a region's new controller) may be added.
    before: dict[str, dict[str, list[str]]] = json.loads(BEFORE.read_text())
    for stack, kinds in before.items():
        resources = synthesized.template(stack)["Resources"]
        for kind, ids in kinds.items():
            now = {name for name, r in resources.items() if r["Type"] == kind}
            assert set(ids) <= now, (stack, kind, sorted(set(ids) - now))


# --- size -----------------------------------------------------------------------------


def test_no_python_file_is_over_400_lines() -> None:
    ours = [REPO / "app.py"] + [
        path
        for folder in ("phoenix", "local", "tests", "bench", "docs", "examples")
        for path in (REPO / folder).rglob("*.py")
        if "cdk.out" not in path.parts and "__pycache__" not in path.parts
    ]
    long = {
        str(path.relative_to(REPO)): lines
        for path in ours
        if (lines := len(path.read_text().splitlines())) > 400
    }
    assert long == {}
