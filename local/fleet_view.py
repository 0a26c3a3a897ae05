"""What a fleet looks like in the embedded AWS, read through the APIs: where its
instances and traffic are, and what the release controller recorded in the ledger."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from moto.autoscaling.models import autoscaling_backends
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.elbv2.models import elbv2_backends
from moto.ssm.models import ssm_backends

from local.cloudformation import aws_client
from local.embedded import ACCOUNT, REGION, EmbeddedAws
from phoenix.kernel.ledger import IN_PROGRESS


@dataclass(frozen=True)
class FleetView:
    """Where a fleet's instances and traffic are, and what the controller recorded."""

    instances_by_slot: dict[str, dict[str, int]]  # slot -> AMI -> instances on it
    desired_by_slot: dict[str, int]
    weights: dict[str, int]
    pointer: str
    fleet_item: dict[str, Any]

    @classmethod
    def read(
        cls, aws: EmbeddedAws, fleet: str, environment: str = "sandbox", region: str = ""
    ) -> FleetView:
        """The fleet of `environment` in `region` (default: the embedded AWS's own)."""

        def client(service: str) -> Any:
            return aws_client(service, region) if region else aws.client(service)

        groups = {
            g["AutoScalingGroupName"].rsplit("-", 1)[1]: g
            for g in client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
            if g["AutoScalingGroupName"].startswith(f"phoenix-{environment}-{fleet}-")
        }
        ec2 = client("ec2")
        amis: dict[str, dict[str, int]] = {}
        for slot, group in groups.items():
            ids = [i["InstanceId"] for i in group["Instances"]]
            found = ec2.describe_instances(InstanceIds=ids)["Reservations"] if ids else []
            amis[slot] = dict(Counter(i["ImageId"] for r in found for i in r["Instances"]))
        slot_of = {arn: slot for slot, g in groups.items() for arn in g["TargetGroupARNs"]}
        weights: dict[str, int] = {}
        elbv2 = client("elbv2")
        for balancer in elbv2.describe_load_balancers()["LoadBalancers"]:
            for listener in elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])[
                "Listeners"
            ]:
                action = listener["DefaultActions"][0]
                for target in action.get("ForwardConfig", {}).get("TargetGroups", []):
                    if target["TargetGroupArn"] in slot_of:
                        weights[slot_of[target["TargetGroupArn"]]] = target["Weight"]
        pointer = client("ssm").get_parameter(Name=f"/phoenix/{environment}/{fleet}/ami")
        return cls(
            instances_by_slot=amis,
            desired_by_slot={s: g["DesiredCapacity"] for s, g in groups.items()},
            weights=weights if len(groups) > 1 else {"blue": 100},
            pointer=pointer["Parameter"]["Value"],
            fleet_item=ledger_item(aws, f"FLEET#{fleet}", "FLEET", environment, region),
        )

    @classmethod
    def peek(cls, fleet: str, environment: str = "sandbox", region: str = REGION) -> FleetView:
        """The same view read straight from moto's backends, in this process, without a
        request (what the chaos test checks after every step; `read` is what a user of
        the APIs sees, and a test holds the two equal)."""
        groups = {
            name.rsplit("-", 1)[1]: group
            for name, group in autoscaling_backends[ACCOUNT][region].autoscaling_groups.items()
            if name.startswith(f"phoenix-{environment}-{fleet}-")
        }
        amis = {
            slot: dict(Counter(state.instance.image_id for state in group.instance_states))
            for slot, group in groups.items()
        }
        slot_of = {arn: slot for slot, g in groups.items() for arn in g.target_group_arns}
        weights: dict[str, int] = {}
        for balancer in list(elbv2_backends[ACCOUNT][region].load_balancers.values()):
            for listener in list(balancer.listeners.values()):
                action = listener.default_actions[0]
                for target in action.data.get("ForwardConfig", {}).get("TargetGroups", []):
                    if target["TargetGroupArn"] in slot_of:
                        weights[slot_of[target["TargetGroupArn"]]] = int(target["Weight"])
        pointer = ssm_backends[ACCOUNT][region].get_parameter(f"/phoenix/{environment}/{fleet}/ami")
        assert pointer is not None
        return cls(
            instances_by_slot=amis,
            desired_by_slot={s: int(g.desired_capacity or 0) for s, g in groups.items()},
            weights=weights if len(groups) > 1 else {"blue": 100},
            pointer=str(pointer.value),
            fleet_item=peek_item(f"FLEET#{fleet}", "FLEET", environment, region),
        )

    @property
    def amis_by_slot(self) -> dict[str, set[str]]:
        return {slot: set(amis) for slot, amis in self.instances_by_slot.items()}

    def traffic_by_ami(self) -> dict[str, float]:
        """The percent of the fleet's traffic each AMI serves: a slot's weight, shared by
        its instances (the load balancer's round robin)."""
        traffic: dict[str, float] = {}
        for slot, weight in self.weights.items():
            instances = self.instances_by_slot.get(slot, {})
            for ami, count in instances.items():
                share = weight * count / sum(instances.values())
                traffic[ami] = traffic.get(ami, 0.0) + share
        return traffic

    @property
    def serving_amis(self) -> set[str]:
        """The AMIs of the instances in slots that receive traffic."""
        return {ami for slot, w in self.weights.items() if w > 0 for ami in self.amis_by_slot[slot]}

    @property
    def idle_desired(self) -> int:
        return sum(d for slot, d in self.desired_by_slot.items() if self.weights.get(slot) == 0)


def closed(release: dict[str, Any]) -> bool:
    """Whether a release item (DynamoDB attribute values) holds the outcome it ended with:
    from Ledger.open_release until then it says IN_PROGRESS."""
    return str(release.get("outcome", {}).get("S", IN_PROGRESS)) != IN_PROGRESS


def ledger_table(aws: EmbeddedAws, environment: str = "sandbox", region: str = "") -> str:
    """The ledger of `environment` in `region`: CloudFormation names its table
    `<stack>-<logical id>-<suffix>`, the stack `phoenix-<env>[-<DR region>]` (so
    `phoenix-waves-next-...` is not waves')."""
    dynamodb = aws_client("dynamodb", region) if region else aws.client("dynamodb")
    own = re.compile(
        rf"^phoenix-{re.escape(environment)}-([a-z]{{2}}-[a-z]+-\d-)?[^-]*Ledger[^-]*-[^-]+$"
    )
    (table,) = [name for name in dynamodb.list_tables()["TableNames"] if own.match(name)]
    return str(table)


def ledger_item(
    aws: EmbeddedAws, pk: str, sk: str, environment: str = "sandbox", region: str = ""
) -> dict[str, Any]:
    dynamodb = aws_client("dynamodb", region) if region else aws.client("dynamodb")
    item = dynamodb.get_item(
        TableName=ledger_table(aws, environment, region), Key={"pk": {"S": pk}, "sk": {"S": sk}}
    )
    return dict(item.get("Item", {}))


def peek_item(
    pk: str, sk: str, environment: str = "sandbox", region: str = REGION
) -> dict[str, Any]:
    """A ledger item read straight from moto's DynamoDB backend (see FleetView.peek)."""
    backend = dynamodb_backends[ACCOUNT][region]
    own = re.compile(
        rf"^phoenix-{re.escape(environment)}-([a-z]{{2}}-[a-z]+-\d-)?[^-]*Ledger[^-]*-[^-]+$"
    )
    (name,) = [name for name in list(backend.tables) if own.match(name)]
    item = backend.get_table(name).get_item(DynamoType({"S": pk}), DynamoType({"S": sk}))
    return dict(item.to_json()["Attributes"]) if item is not None else {}


def release_item(aws: EmbeddedAws, fleet: str, release_id: str) -> dict[str, Any]:
    item = ledger_item(aws, f"FLEET#{fleet}", f"RELEASE#{release_id}")
    return {
        "outcome": item["outcome"]["S"],
        "reason": item.get("reason", {}).get("S", ""),
        "steps": [s["M"]["step"]["S"] for s in item["steps"]["L"]],
        "to_ami": item["to_ami"]["S"],
        # each judged step's metrics: name -> verdict
        "judged": [
            {j["M"]["name"]["S"]: j["M"]["verdict"]["S"] for j in s["M"]["judged"]["L"]}
            for s in item["steps"]["L"]
            if "judged" in s["M"]
        ],
    }


def states_entered(aws: EmbeddedAws, execution_arn: str) -> set[str]:
    """The names of the states an execution entered (its history, one page of 1,000)."""
    history = aws.client("stepfunctions").get_execution_history(
        executionArn=execution_arn, maxResults=1000
    )["events"]
    return {
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    }
