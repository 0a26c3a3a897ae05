"""AWS clients for a handler, made on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, cast, overload

if TYPE_CHECKING:
    # boto3's type stubs are a development dependency (requirements-dev.txt): the Lambda
    # runtime has none, so the client types are only ever read by the type checker.
    from types_boto3_autoscaling.client import AutoScalingClient
    from types_boto3_cloudformation.client import CloudFormationClient
    from types_boto3_cloudwatch.client import CloudWatchClient
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_ec2.client import EC2Client
    from types_boto3_elbv2.client import ElasticLoadBalancingv2Client
    from types_boto3_events.client import EventBridgeClient
    from types_boto3_imagebuilder.client import ImagebuilderClient
    from types_boto3_kms.client import KMSClient
    from types_boto3_lambda.client import LambdaClient
    from types_boto3_ssm.client import SSMClient
    from types_boto3_stepfunctions.client import SFNClient

# The services phoenix's runtime calls: one property of `Clients` each.
Service = Literal[
    "autoscaling",
    "cloudformation",
    "cloudwatch",
    "dynamodb",
    "ec2",
    "elbv2",
    "events",
    "imagebuilder",
    "kms",
    "lambda",
    "ssm",
    "stepfunctions",
]


# The clients made so far in this execution environment, by service and region: a warm
# invocation reuses them (Lambda's guidance: initialize SDK clients outside the handler;
# making one costs more than most calls a step makes). A boto3 client is safe to share
# between threads; making one is not, hence the lock.
_made_here: dict[tuple[str, str, int], object] = {}
_making = threading.Lock()


def forget_clients() -> None:
    """Drop the clients made so far, as a new execution environment starts without them
    (the embedded AWS calls this when it starts; tests between tests)."""
    with _making:
        _made_here.clear()


class Clients:
    """boto3 clients made on first use (a path imports and builds only what it calls),
    with botocore's standard retry mode: throttling and transient errors are retried.
    Made once per execution environment and region, and reused by later invocations.

    One typed property per service. Tests supply the clients: `factory` makes a service's
    client on its first use (a Stubber-wrapped or moto client), `provide` sets one."""

    def __init__(self, region: str, factory: Callable[[Service], object] | None = None) -> None:
        self._region = region
        self._factory = factory
        self._made: dict[Service, object] = {}
        self._elsewhere: dict[str, Clients] = {}

    def in_region(self, region: str) -> Clients:
        """The clients for `region`: these, when it is their own; else made on first use
        the same way (a test provides another region's clients through these)."""
        if region == self._region:
            return self
        if region not in self._elsewhere:
            self._elsewhere[region] = Clients(region, self._factory)
        return self._elsewhere[region]

    @property
    def autoscaling(self) -> AutoScalingClient:
        return self._client("autoscaling")

    @property
    def cloudformation(self) -> CloudFormationClient:
        return self._client("cloudformation")

    @property
    def cloudwatch(self) -> CloudWatchClient:
        return self._client("cloudwatch")

    @property
    def dynamodb(self) -> DynamoDBClient:
        return self._client("dynamodb")

    @property
    def ec2(self) -> EC2Client:
        return self._client("ec2")

    @property
    def elbv2(self) -> ElasticLoadBalancingv2Client:
        return self._client("elbv2")

    @property
    def events(self) -> EventBridgeClient:
        return self._client("events")

    @property
    def imagebuilder(self) -> ImagebuilderClient:
        return self._client("imagebuilder")

    @property
    def kms(self) -> KMSClient:
        return self._client("kms")

    @property
    def ssm(self) -> SSMClient:
        return self._client("ssm")

    @property
    def stepfunctions(self) -> SFNClient:
        return self._client("stepfunctions")

    def provide(self, service: Service, client: object) -> None:
        """Use `client` for `service` (tests: a Stubber-wrapped or moto client)."""
        self._made[service] = client

    # The one place a service name meets its client type: what boto3.client returns for
    # the name, as boto3's stubs say (and what a test's factory or `provide` must give).
    @overload
    def _client(self, service: Literal["autoscaling"]) -> AutoScalingClient: ...
    @overload
    def _client(self, service: Literal["cloudformation"]) -> CloudFormationClient: ...
    @overload
    def _client(self, service: Literal["cloudwatch"]) -> CloudWatchClient: ...
    @overload
    def _client(self, service: Literal["dynamodb"]) -> DynamoDBClient: ...
    @overload
    def _client(self, service: Literal["ec2"]) -> EC2Client: ...
    @overload
    def _client(self, service: Literal["elbv2"]) -> ElasticLoadBalancingv2Client: ...
    @overload
    def _client(self, service: Literal["events"]) -> EventBridgeClient: ...
    @overload
    def _client(self, service: Literal["imagebuilder"]) -> ImagebuilderClient: ...
    @overload
    def _client(self, service: Literal["kms"]) -> KMSClient: ...
    @overload
    def _client(self, service: Literal["ssm"]) -> SSMClient: ...
    @overload
    def _client(self, service: Literal["stepfunctions"]) -> SFNClient: ...
    def _client(self, service: Service) -> object:
        if service not in self._made:
            self._made[service] = self._make(service)
        return self._made[service]

    def invoker(self, waiting: int) -> LambdaClient:
        """Lambda, for a synchronous invocation answered within `waiting` seconds (its read
        timeout) and never retried: the function it runs (a fleet's pre-traffic hook) may
        not be safe to run twice."""
        if self._factory is not None:
            return cast("LambdaClient", self._factory("lambda"))
        return cast("LambdaClient", self._make("lambda", waiting=waiting))

    def _make(self, service: Service, *, waiting: int = 0) -> object:
        if self._factory is not None:
            return self._factory(service)
        import boto3  # noqa: PLC0415 - lazily: a handler that fails validation never pays
        from botocore.config import Config  # noqa: PLC0415

        with _making:
            key = (service, self._region, waiting)
            if key not in _made_here:
                config = (
                    Config(
                        read_timeout=waiting, connect_timeout=10, retries={"total_max_attempts": 1}
                    )
                    if waiting
                    else Config(retries={"mode": "standard", "max_attempts": 5})
                )
                _made_here[key] = boto3.client(
                    service, region_name=self._region or None, config=config
                )
            return _made_here[key]
