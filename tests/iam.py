"""Reading IAM policy documents out of synthesized templates."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

# What every phoenix function is granted (its log group, X-Ray), and what a function that
# uses the ledger table needs of the key that encrypts it.
EVERY_FUNCTION = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
TABLE_KEY = {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"}
# What Lambda does with the role of a function invoked asynchronously (a rule target) once
# an event failed on it three times: it sends the record to the on-failure queue, which
# the environment key encrypts (phoenix/platform/undelivered.py).
ASYNC_DESTINATION = {"sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt"}


def asynchronous(template: Template, handler: str) -> set[str]:
    """ASYNC_DESTINATION when the function of `handler` has an on-failure destination
    (an EventInvokeConfig), else nothing."""
    (logical,) = [
        name
        for name, f in template.find_resources("AWS::Lambda::Function").items()
        if f["Properties"]["Handler"] == handler
    ]
    configs = template.find_resources("AWS::Lambda::EventInvokeConfig").values()
    invoked = any(c["Properties"]["FunctionName"] == {"Ref": logical} for c in configs)
    return ASYNC_DESTINATION if invoked else set()


def actions_of(statement: dict[str, Any]) -> list[str]:
    """A statement's actions: IAM allows a single string or a list."""
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def granted_actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for statement in statements for action in actions_of(statement)}


def function_statements(template: Template, handler: str) -> list[dict[str, Any]]:
    """Every policy statement of the role of the one function whose handler is `handler`."""
    (function,) = [
        f
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == handler
    ]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
