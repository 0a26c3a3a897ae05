"""Least privilege for the release steps: each step function is granted exactly what
phoenix/release/spec.py's STEP_CALLS lists, and every listed call is one its code makes.

(The other direction, that the code calls nothing beyond the list, is checked on real
calls in tests/integration/test_release.py.)
"""

from __future__ import annotations

import ast
import re

import pytest
from aws_cdk.assertions import Template

from phoenix.release.spec import STEP_CALLS, step_handler
from tests.code import handler_module, modules_reached
from tests.conftest import SynthesizedApp
from tests.iam import (
    EVERY_FUNCTION,
    TABLE_KEY,
    asynchronous,
    function_statements,
    granted_actions,
)

# Granted for a call the code makes, not called by name: Auto Scaling launches from a
# launch template with the caller's permissions (UpdateAutoScalingGroup and
# StartInstanceRefresh with a template version: RunInstances, PassRole, and CreateTags
# for the template's tags on launch), and DynamoDB uses the table's key.
IMPLIED = {"ec2:RunInstances", "iam:PassRole", "ec2:CreateTags"}


# An IAM action named otherwise than the API operation it authorizes (Service
# Authorization Reference, AWS Lambda: InvokeFunction authorizes Invoke).
OPERATION = {"lambda:InvokeFunction": "invoke"}


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def _called_methods(step: str) -> set[str]:
    return {
        node.func.attr
        for path in modules_reached(handler_module(step_handler(step)))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }


@pytest.mark.parametrize("step", sorted(STEP_CALLS))
def test_every_call_a_step_is_granted_is_one_its_code_makes(step: str) -> None:
    ledger, fleet, other = STEP_CALLS[step]
    called = _called_methods(step)
    for action in {*ledger, *fleet, *other} - IMPLIED:
        method = OPERATION.get(action) or _snake(action.split(":")[1])
        assert method in called, f"{step} never calls {action}"


@pytest.mark.parametrize("step", sorted(STEP_CALLS))
def test_each_step_function_is_granted_exactly_its_calls(
    synthesized: SynthesizedApp, step: str
) -> None:
    template = Template.from_json(synthesized.template("phoenix-production"))
    statements = function_statements(template, step_handler(step))
    ledger, fleet, other = STEP_CALLS[step]
    async_ = asynchronous(template, step_handler(step))
    expected = {*ledger, *fleet, *other, *EVERY_FUNCTION, *TABLE_KEY, *async_}
    assert granted_actions(statements) == expected
    for statement in statements:
        if statement["Resource"] == "*" and "Condition" not in statement:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            for action in actions:
                verb = action.split(":")[1]
                # reads, which support no resource-level permissions, and X-Ray's writes
                assert verb.startswith(("Describe", "Get", "List", "PutTrace", "PutTelemetry")), (
                    action
                )
