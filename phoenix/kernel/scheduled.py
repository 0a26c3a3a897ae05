"""A scheduled function's input: the one its schedule sends, and nothing else."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger


def refusal(
    event: Any, expected: dict[str, str], what: str, logger: Logger
) -> dict[str, Any] | None:
    """None for the input the schedule sends (`expected`); for anything else (another
    environment's, a malformed input) the answer that refuses it, logged, before any call."""
    if event == expected:
        return None
    logger.warning("event refused", extra={"reason": f"not {expected}", "event": str(event)[:300]})
    return {"action": "refused", "reason": f"{what} takes {expected}"}
