"""Reading IAM policy documents out of synthesized templates."""

from __future__ import annotations

from typing import Any


def actions_of(statement: dict[str, Any]) -> list[str]:
    """A statement's actions: IAM allows a single string or a list."""
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def granted_actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for statement in statements for action in actions_of(statement)}
