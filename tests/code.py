"""What a handler's code is: the phoenix modules it imports, transitively."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def module_file(module: str) -> Path | None:
    """The file of a `phoenix...` module (a package's __init__.py), or None if none."""
    path = PACKAGE_ROOT.joinpath(*module.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def modules_reached(module: str) -> list[Path]:
    """`module`'s file and every phoenix module file it imports, transitively."""
    seen: list[Path] = []
    pending = [module]
    while pending:
        path = module_file(pending.pop())
        if path is None or path in seen:
            continue
        seen.append(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("phoenix"):
                base = str(node.module)
                pending.append(base)
                pending += [f"{base}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                pending += [a.name for a in node.names if a.name.startswith("phoenix")]
    return seen


def handler_module(handler: str) -> str:
    """`phoenix.release.handlers.gate.lambda_handler` -> `phoenix.release.handlers.gate`."""
    return handler.rpartition(".")[0]
