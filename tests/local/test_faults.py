"""The embedded AWS's faults (local/faults.py) reach a handler as AWS's would: the error
in the service's protocol after the SDK's retries, the effect of a call whose answer was
lost, and the end of the function's process right after a call."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.api_calls import LAMBDA_THREAD, Between, between, invocation
from local.cloudformation import aws_client
from local.embedded import EmbeddedAws
from local.faults import CLIENT_ATTEMPTS, Fault, Kind, ProcessDied, armed
from local.lambda_dispatch import LambdaContext, invoke_handler
from local.lambda_environments import function_environment
from phoenix.kernel.clients import Clients

TABLE = "faults"
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/lb/1234/5678"


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    """An embedded AWS with a table, and a function `probe` whose role may do what these
    tests call (IAM is enforced on the calls of a function's thread)."""
    with EmbeddedAws() as embedded:
        aws_client("dynamodb", embedded.region).create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        iam = aws_client("iam", embedded.region)
        trust = {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ]
        }
        role = iam.create_role(RoleName="probe", AssumeRolePolicyDocument=json.dumps(trust))
        allowed = ["dynamodb:UpdateItem", "elasticloadbalancing:ModifyListener", "ec2:CreateTags"]
        iam.put_role_policy(
            RoleName="probe",
            PolicyName="calls",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": allowed, "Resource": "*"}],
                }
            ),
        )
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("probe.py", "")
        aws_client("lambda", embedded.region).create_function(
            FunctionName="probe",
            Runtime="python3.11",
            Role=role["Role"]["Arn"],
            Handler="probe.lambda_handler",
            Code={"ZipFile": archive.getvalue()},
        )
        yield embedded


def as_handler(aws: EmbeddedAws, call: Callable[[], Any]) -> Any:
    """Run `call` as a handler runs (in a thread named for its function, with the
    endpoint and credentials in its environment); its result, or the exception it raised
    (a ProcessDied included)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with function_environment(aws.cli_environment()):
                outcome["result"] = call()
        except BaseException as error:
            outcome["result"] = error

    worker = threading.Thread(target=run, name=f"{LAMBDA_THREAD}probe")
    worker.start()
    worker.join()
    return outcome["result"]


def counter(aws: EmbeddedAws) -> int:
    item = aws_client("dynamodb", aws.region).get_item(
        TableName=TABLE, Key={"pk": {"S": "counter"}}
    )
    return int(item.get("Item", {}).get("n", {}).get("N", "0"))


def add_one(clients: Clients) -> Any:
    return clients.dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "counter"}},
        UpdateExpression="ADD n :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )


@pytest.mark.parametrize(
    ("action", "call", "code", "status"),
    [
        ("dynamodb:UpdateItem", add_one, "ThrottlingException", 400),
        (
            "elasticloadbalancing:ModifyListener",
            lambda c: c.elbv2.modify_listener(ListenerArn=LISTENER),
            "Throttling",
            400,
        ),
        (
            "ec2:CreateTags",
            lambda c: c.ec2.create_tags(Resources=["ami-1"], Tags=[{"Key": "k", "Value": "v"}]),
            "RequestLimitExceeded",
            503,
        ),
    ],
)
def test_throttling_reaches_the_handler_after_every_attempt_in_the_service_s_protocol(
    aws: EmbeddedAws, action: str, call: Callable[[Clients], Any], code: str, status: int
) -> None:
    before = counter(aws)
    with armed(Fault(action, Kind.THROTTLED, times=CLIENT_ATTEMPTS)) as fault:
        raised = as_handler(aws, lambda: call(Clients(aws.region)))
    assert isinstance(raised, ClientError), raised
    assert raised.response["Error"]["Code"] == code
    assert raised.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert fault.served == CLIENT_ATTEMPTS
    assert counter(aws) == before  # nothing took effect


def test_a_server_error_once_is_retried_by_the_sdk(aws: EmbeddedAws) -> None:
    before = counter(aws)
    with armed(Fault("dynamodb:UpdateItem", Kind.SERVER_ERROR, times=1)) as fault:
        raised = as_handler(aws, lambda: add_one(Clients(aws.region)))
    assert not isinstance(raised, BaseException), raised
    assert fault.served == 1
    assert counter(aws) == before + 1


def test_a_timeout_after_the_effect_is_retried_and_the_effect_happens_twice(
    aws: EmbeddedAws,
) -> None:
    # An increment is not idempotent: the lost answer's retry increments again, as on AWS
    before = counter(aws)
    with armed(Fault("dynamodb:UpdateItem", Kind.TIMED_OUT_AFTER_EFFECT)) as fault:
        raised = as_handler(aws, lambda: add_one(Clients(aws.region)))
    assert not isinstance(raised, BaseException), raised
    assert fault.served == 1
    assert counter(aws) == before + 2


def test_a_process_that_dies_after_a_call_leaves_its_effect(aws: EmbeddedAws) -> None:
    before = counter(aws)
    with armed(Fault("dynamodb:UpdateItem", Kind.DIED_AFTER_EFFECT)) as fault:
        raised = as_handler(aws, lambda: add_one(Clients(aws.region)))
    assert isinstance(raised, ProcessDied)
    assert fault.served == 1
    assert counter(aws) == before + 1


def test_only_the_armed_function_meets_the_fault(aws: EmbeddedAws) -> None:
    before = counter(aws)
    fault = Fault("dynamodb:UpdateItem", Kind.THROTTLED, times=CLIENT_ATTEMPTS, function="other")
    with armed(fault):
        raised = as_handler(aws, lambda: add_one(Clients(aws.region)))
        add_one(Clients(aws.region))  # not a handler's call
    assert not isinstance(raised, BaseException), raised
    assert fault.served == 0
    assert counter(aws) == before + 2


def dying_handler(event: Any, context: Any) -> None:
    raise ProcessDied("killed")


def test_lambda_answers_a_died_process_with_the_runtime_s_exit() -> None:
    context = LambdaContext("probe", "arn:aws:lambda:us-east-1:123456789012:function:probe", 128, 5)
    invocation = invoke_handler("tests.local.test_faults.dying_handler", {}, context, {})
    payload = json.loads(invocation.payload)
    assert invocation.errored
    assert payload["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error: signal: killed" in payload["errorMessage"]


def test_between_runs_once_before_the_nth_call_of_the_invocation_it_names(
    aws: EmbeddedAws,
) -> None:
    # Given something to run before the second UpdateItem of a `succeed` invocation
    seen: list[int] = []

    def meanwhile() -> None:
        seen.append(counter(aws))  # what the held handler had done by then
        raise RuntimeError("kept, not the handler's")

    def succeeding(event: dict[str, str]) -> Callable[[], None]:
        def run() -> None:
            clients = Clients(aws.region)
            with invocation(event):
                for _ in range(3):
                    add_one(clients)

        return run

    interleaving = Between(
        "dynamodb:UpdateItem",
        lambda function, event: function == "probe" and event == {"action": "succeed"},
        meanwhile,
        nth=2,
    )
    before = counter(aws)
    # When another invocation runs, and then the one it names, which goes on after
    with between(interleaving):
        assert as_handler(aws, succeeding({"action": "retire"})) is None
        assert as_handler(aws, succeeding({"action": "succeed"})) is None

    # Then it ran once, after the named invocation's first call and before its second
    assert seen == [before + 4]
    assert interleaving.calls == 3
    assert isinstance(interleaving.error, RuntimeError)
    assert counter(aws) == before + 6
