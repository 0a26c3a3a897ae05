"""A rolling fleet's drill instance: one instance of the rollback target outside the
fleet's group and target group (phoenix/drills/runtime/drill.py holds the lock and
records the drill).

It is launched from the group's launch template version with the target's AMI (what a
rollback release launches: a version of the same template with the AMI before), in the
group's first subnet. The fleet's templates give their network interface (no public
address), and RunInstances then takes the subnet in that interface, not as `SubnetId`
("If you specify a network interface, you must specify any security groups and subnets
as part of the network interface"; EC2 API reference, RunInstances). The drill's id is
the request's client token, so a launch retried after a timeout is the same instance,
and its tag, so the instance is found (and terminated) even if its id was never recorded.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from phoenix.kernel.clients import Clients
from phoenix.kernel.fleet_calls import group_template
from phoenix.kernel.names import FLEET_TAG

if TYPE_CHECKING:
    from types_boto3_ec2.type_defs import (
        InstanceNetworkInterfaceSpecificationTypeDef,
        RunInstancesRequestTypeDef,
    )

# A rolling fleet's temporary instance carries the drill's id.
DRILL_TAG = "phoenix:drill"
LIVE = ("pending", "running", "stopping", "stopped")


def launch(aws: Clients, environment: str, spec: dict[str, Any], drill: dict[str, Any]) -> str:
    """Launch the drill's instance; its id (ClientError when EC2 refuses)."""
    fleet, (slot,) = str(spec["name"]), spec["slots"].values()
    group, version, data = group_template(
        aws.autoscaling, aws.ec2, slot["group"], slot["launch_template"]
    )
    subnet = str(group["VPCZoneIdentifier"]).split(",")[0]
    request: RunInstancesRequestTypeDef = {
        "LaunchTemplate": {"LaunchTemplateId": slot["launch_template"], "Version": version},
        "ImageId": drill["ami"],
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": drill["id"],
        "TagSpecifications": [
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": FLEET_TAG, "Value": f"{environment}/{fleet}"},
                    {"Key": DRILL_TAG, "Value": drill["id"]},
                ],
            }
        ],
    }
    interfaces = data.get("LaunchTemplateData", {}).get("NetworkInterfaces") or []
    if interfaces:
        first: InstanceNetworkInterfaceSpecificationTypeDef = {
            **interfaces[0],
            "SubnetId": subnet,
        }
        request["NetworkInterfaces"] = [first]
    else:
        request["SubnetId"] = subnet
    launched = aws.ec2.run_instances(**request)
    return str(launched["Instances"][0]["InstanceId"])


def status(
    aws: Clients, drill: dict[str, Any], waited: timedelta, limit: timedelta
) -> tuple[str, str]:
    """("passed" | "failed" | "waiting", why): passed once running with both EC2 status
    checks ok; failed once it stops, or after `limit`."""
    found = aws.ec2.describe_instance_status(
        InstanceIds=[drill["instance"]], IncludeAllInstances=True
    )["InstanceStatuses"]
    seen: dict[str, Any] = dict(found[0]) if found else {}
    state = seen.get("InstanceState", {}).get("Name", "gone")
    checks = "/".join(
        str(seen.get(kind, {}).get("Status")) for kind in ("InstanceStatus", "SystemStatus")
    )
    if state == "running" and checks == "ok/ok":
        return "passed", ""
    if state in {"pending", "running"} and waited < limit:
        return "waiting", f"{state}, status checks {checks}"
    return "failed", (
        f"the temporary instance of the rollback target {drill['ami']} is {state} "
        f"(status checks {checks}) after {int(waited.total_seconds() // 60)} minutes"
    )


def terminate(aws: Clients, drill: dict[str, Any]) -> None:
    """Terminate the drill's instance: the one recorded, and any carrying its tag."""
    tagged = aws.ec2.describe_instances(
        Filters=[
            {"Name": f"tag:{DRILL_TAG}", "Values": [drill["id"]]},
            {"Name": "instance-state-name", "Values": list(LIVE)},
        ]
    )["Reservations"]
    instances = {i["InstanceId"] for r in tagged for i in r["Instances"]}
    instances |= {drill["instance"]} if drill.get("instance") else set()
    if instances:
        aws.ec2.terminate_instances(InstanceIds=sorted(instances))
