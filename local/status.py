"""What the embedded AWS is running: each fleet's groups, instances, weights and alarms."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from phoenix.kernel.names import release_state_machine


def describe_fleets(client: Callable[[str], Any], environment: str) -> str:
    """Each fleet's address and alarms in ALARM, then one line per slot: capacity,
    template version, weight, AMIs and the latest instance refresh. `client(service)`
    gives a boto3 client."""
    autoscaling, elbv2, ec2 = client("autoscaling"), client("elbv2"), client("ec2")
    pages = client("cloudwatch").get_paginator("describe_alarms")
    alarms = [
        alarm
        for page in pages.paginate(AlarmNamePrefix=f"phoenix-{environment}-")
        for alarm in page["MetricAlarms"]
    ]
    firing = sorted(a["AlarmName"] for a in alarms if a["StateValue"] == "ALARM")
    prefix = f"phoenix-{environment}-"
    # every page: DescribeAutoScalingGroups returns at most 50 groups at a time
    pages = autoscaling.get_paginator("describe_auto_scaling_groups").paginate()
    groups = [
        g
        for page in pages
        for g in page["AutoScalingGroups"]
        if g["AutoScalingGroupName"].startswith(prefix)
    ]
    images = _instance_images(ec2, [i["InstanceId"] for g in groups for i in g["Instances"]])
    weights = _weights_by_target_group(elbv2)
    addresses = _addresses_by_target_group(elbv2)
    lines = []
    fleets = {g["AutoScalingGroupName"][len(prefix) :].rsplit("-", 1)[0] for g in groups}
    for fleet in sorted(fleets):
        members = [g for g in groups if g["AutoScalingGroupName"].startswith(f"{prefix}{fleet}-")]
        urls = {addresses[a] for g in members for a in g["TargetGroupARNs"] if a in addresses}
        lines.append(f"fleet {fleet}: " + (", ".join(f"http://{u}" for u in sorted(urls)) or "-"))
        in_alarm = [a for a in firing if a.startswith(f"phoenix-{environment}-{fleet}-")]
        lines.append(f"  alarms in ALARM: {', '.join(in_alarm) or 'none'}")
        for group in groups:
            name = group["AutoScalingGroupName"]
            if not name.startswith(f"{prefix}{fleet}-"):
                continue
            weight = ", ".join(str(weights.get(arn, "-")) for arn in group["TargetGroupARNs"])
            counts = Counter(images[i["InstanceId"]] for i in group["Instances"])
            amis = [f"{ami} x{count}" for ami, count in sorted(counts.items())] or ["-"]
            refreshes = autoscaling.describe_instance_refreshes(AutoScalingGroupName=name)
            latest = refreshes["InstanceRefreshes"][:1]
            refresh = (
                f", refresh {latest[0]['Status']} {latest[0]['PercentageComplete']}%"
                if latest
                else ""
            )
            lines.append(
                f"  {name}: min {group['MinSize']} desired {group['DesiredCapacity']} "
                f"max {group['MaxSize']}, template version "
                f"{group['LaunchTemplate']['Version']}, weight {weight}, AMIs {', '.join(amis)}"
                f"{refresh}"
            )
    lines.append(f"releases in flight: {_releases_in_flight(client, environment)}")
    return "\n".join(lines) if groups else f"no fleets of {environment} deployed"


def _releases_in_flight(client: Callable[[str], Any], environment: str) -> str:
    stepfunctions = client("stepfunctions")
    machines = [
        m["stateMachineArn"]
        for m in stepfunctions.list_state_machines()["stateMachines"]
        if m["name"] == release_state_machine(environment)
    ]
    running = [
        e["name"]
        for arn in machines
        for e in stepfunctions.list_executions(stateMachineArn=arn, statusFilter="RUNNING")[
            "executions"
        ]
    ]
    return ", ".join(running) or "none"


def _instance_images(ec2: Any, instance_ids: list[str]) -> dict[str, str]:
    if not instance_ids:
        return {}
    reservations = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    return {i["InstanceId"]: i["ImageId"] for r in reservations for i in r["Instances"]}


def _addresses_by_target_group(elbv2: Any) -> dict[str, str]:
    balancers = {
        b["LoadBalancerArn"]: b["DNSName"] for b in elbv2.describe_load_balancers()["LoadBalancers"]
    }
    return {
        group["TargetGroupArn"]: balancers[arn]
        for group in elbv2.describe_target_groups()["TargetGroups"]
        for arn in group.get("LoadBalancerArns", [])[:1]
        if arn in balancers
    }


def _weights_by_target_group(elbv2: Any) -> dict[str, int]:
    weights = {}
    for balancer in elbv2.describe_load_balancers()["LoadBalancers"]:
        for listener in elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])[
            "Listeners"
        ]:
            for action in listener["DefaultActions"]:
                for group in action.get("ForwardConfig", {}).get("TargetGroups", []):
                    weights[group["TargetGroupArn"]] = int(group.get("Weight", 1))
                if "TargetGroupArn" in action:
                    weights[action["TargetGroupArn"]] = 100
    return weights
