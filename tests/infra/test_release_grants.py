"""Least privilege for the release steps: each step function is granted exactly what
infra/release_spec.py's STEP_CALLS lists, and every listed call is one its code makes.

(The other direction, that the code calls nothing beyond the list, is checked on real
calls in tests/integration/test_release.py.)
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from infra.release_spec import STEP_CALLS
from tests.conftest import SynthesizedApp
from tests.iam import granted_actions

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
# Granted for a call the code makes, not called by name: Auto Scaling launches from a
# launch template with the caller's permissions (UpdateAutoScalingGroup and
# StartInstanceRefresh with a template version), and DynamoDB uses the table's key.
IMPLIED = {"ec2:RunInstances", "iam:PassRole"}
EVERY_FUNCTION = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
TABLE_KEY = {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"}


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def _modules(step: str) -> list[Path]:
    """The handler and the functions.common modules it imports, transitively."""
    seen: list[Path] = []
    pending = [FUNCTIONS / step / "handler.py"]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.append(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "functions.common":
                pending += [FUNCTIONS / "common" / f"{alias.name}.py" for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "functions.common."
            ):
                pending.append(FUNCTIONS / "common" / f"{str(node.module).rsplit('.', 1)[1]}.py")
    return seen


def _called_methods(step: str) -> set[str]:
    return {
        node.func.attr
        for path in _modules(step)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }


@pytest.mark.parametrize("step", sorted(STEP_CALLS))
def test_every_call_a_step_is_granted_is_one_its_code_makes(step: str) -> None:
    ledger, fleet, other = STEP_CALLS[step]
    called = _called_methods(step)
    for action in {*ledger, *fleet, *other} - IMPLIED:
        assert _snake(action.split(":")[1]) in called, f"{step} never calls {action}"


@pytest.mark.parametrize("step", sorted(STEP_CALLS))
def test_each_step_function_is_granted_exactly_its_calls(
    synthesized: SynthesizedApp, step: str
) -> None:
    template = Template.from_json(synthesized.template("phoenix-production"))
    (function,) = [
        f
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == f"functions.{step}.handler.lambda_handler"
    ]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    ledger, fleet, other = STEP_CALLS[step]
    assert granted_actions(statements) == {*ledger, *fleet, *other, *EVERY_FUNCTION, *TABLE_KEY}
    for statement in statements:
        if statement["Resource"] == "*" and "Condition" not in statement:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            for action in actions:
                verb = action.split(":")[1]
                assert verb.startswith(("Describe", "Get", "PutTrace", "PutTelemetry")), action
