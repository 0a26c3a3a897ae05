"""Least privilege for the plan's functions: each is granted exactly the calls its code
makes (read from the code itself), and each call its code makes is granted."""

from __future__ import annotations

import ast
import re

import pytest
from aws_cdk.assertions import Template

from tests.code import handler_module, modules_reached
from tests.conftest import SynthesizedApp
from tests.iam import (
    EVERY_FUNCTION,
    TABLE_KEY,
    asynchronous,
    function_statements,
    granted_actions,
)

CALLS = {
    "phoenix.plan.handlers.plan_step.lambda_handler": {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "events:PutEvents",
        "states:DescribeExecution",
        "states:StartExecution",  # production's DR wave, in another region
        "ssm:GetParameters",  # production's waves count requests
        "cloudwatch:GetMetricData",
    },
    "phoenix.plan.handlers.plan_control.lambda_handler": {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "states:SendTaskSuccess",
    },
}


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def _calls_in_code(handler: str) -> set[str]:
    """Method names called on any object, and the operations paginators are made for."""
    called: set[str] = set()
    for path in modules_reached(handler_module(handler)):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                called.add(node.func.attr)
                if node.func.attr == "get_paginator" and isinstance(node.args[0], ast.Constant):
                    called.add(str(node.args[0].value))
    return called


# examples/promotion: what a promotion across accounts adds on either side.
PROMOTION_CALLS = {
    ("phoenix-production", "phoenix.plan.handlers.plan_step.lambda_handler"): {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",  # a rollback of the AMI in an earlier environment
        "events:PutEvents",
        "states:DescribeExecution",
        "ssm:GetParameters",
        "cloudwatch:GetMetricData",
        "kms:CreateGrant",  # the earlier account's key, for this account's Auto Scaling
    },
    ("phoenix-production", "phoenix.plan.handlers.plan_control.lambda_handler"): {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",  # an earlier environment's rollback
        "states:SendTaskSuccess",
    },
    ("phoenix-staging", "phoenix.plan.handlers.plan_step.lambda_handler"): {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "events:PutEvents",
        "states:DescribeExecution",
        "ssm:GetParameters",
        "ssm:GetParameter",  # its key's ARN, for the later account
        "cloudwatch:GetMetricData",
    },
}


@pytest.mark.parametrize(("stack", "handler"), sorted(PROMOTION_CALLS))
def test_each_plan_function_of_a_promotion_is_granted_exactly_its_calls(
    promotion_synthesized: SynthesizedApp, stack: str, handler: str
) -> None:
    template = Template.from_json(promotion_synthesized.template(stack))
    statements = function_statements(template, handler)
    expected = PROMOTION_CALLS[(stack, handler)] | EVERY_FUNCTION | TABLE_KEY
    expected |= asynchronous(template, handler)
    assert granted_actions(statements) == expected


@pytest.mark.parametrize(("stack", "handler"), sorted(PROMOTION_CALLS))
def test_every_call_granted_to_a_plan_function_of_a_promotion_is_one_its_code_makes(
    stack: str, handler: str
) -> None:
    called = _calls_in_code(handler)
    for action in PROMOTION_CALLS[(stack, handler)]:
        assert _snake(action.split(":")[1]) in called, f"{handler} never calls {action}"


@pytest.mark.parametrize("handler", sorted(CALLS))
def test_each_plan_function_is_granted_exactly_its_calls(
    synthesized: SynthesizedApp, handler: str
) -> None:
    template = Template.from_json(synthesized.template("phoenix-production"))
    statements = function_statements(template, handler)
    expected = CALLS[handler] | EVERY_FUNCTION | TABLE_KEY | asynchronous(template, handler)
    assert granted_actions(statements) == expected


@pytest.mark.parametrize("handler", sorted(CALLS))
def test_every_call_granted_to_a_plan_function_is_one_its_code_makes(handler: str) -> None:
    called = _calls_in_code(handler)
    for action in CALLS[handler]:
        assert _snake(action.split(":")[1]) in called, f"{handler} never calls {action}"
