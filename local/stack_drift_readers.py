"""What drift detection reads of a resource (local.stack_drift): its properties as the
service describes them now, named as the resource's CloudFormation properties, or None
when the resource is gone. Each reader calls moto's own API (a boto3 client of the
embedded endpoint), as CloudFormation calls the resource's service.

A reader returns the properties it reads (None: read, and not set); a template property
it does not return is not compared (Tags, attribute lists, notification and metrics
settings: AWS compares them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from local.cloudformation import embedded_endpoint, endpoint_client

Reader = Callable[[str, str | None, dict[str, Any]], dict[str, Any] | None]


def _client(service: str, region: str) -> Any:
    return endpoint_client(service, embedded_endpoint(), region)


def _described(describe: Callable[[], Any], listed: str, *, gone: str) -> dict[str, Any] | None:
    """The one resource a describe by its ID lists under `listed`, or None when the
    service answers `gone`, its error for a resource that no longer exists."""
    try:
        found: dict[str, Any] = describe()[listed][0]
    except ClientError as error:
        if error.response["Error"]["Code"] == gone:
            return None
        raise
    return found


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def auto_scaling_group(region: str, name: str | None, _: dict[str, Any]) -> dict[str, Any] | None:
    found = _client("autoscaling", region).describe_auto_scaling_groups(
        AutoScalingGroupNames=[str(name)]
    )["AutoScalingGroups"]
    if not found:
        return None
    group = found[0]
    return _present({
        "AutoScalingGroupName": group["AutoScalingGroupName"],
        "MinSize": group["MinSize"],
        "MaxSize": group["MaxSize"],
        "DesiredCapacity": group["DesiredCapacity"],
        "DefaultCooldown": group.get("DefaultCooldown"),
        "HealthCheckType": group.get("HealthCheckType"),
        "HealthCheckGracePeriod": group.get("HealthCheckGracePeriod"),
        "DefaultInstanceWarmup": group.get("DefaultInstanceWarmup"),
        "MaxInstanceLifetime": group.get("MaxInstanceLifetime"),
        "CapacityRebalance": group.get("CapacityRebalance"),
        "NewInstancesProtectedFromScaleIn": group.get("NewInstancesProtectedFromScaleIn"),
        "LaunchTemplate": group.get("LaunchTemplate"),
        "TargetGroupARNs": group.get("TargetGroupARNs", []),
        "VPCZoneIdentifier": [s for s in group.get("VPCZoneIdentifier", "").split(",") if s],
    })  # fmt: skip


def _rules(permissions: list[dict[str, Any]], *, egress: bool) -> list[dict[str, Any]]:
    """A group's IpPermissions as CloudFormation writes rules: one per source."""
    peer = "Destination" if egress else "Source"
    rules = []
    for permission in permissions:
        base = {"IpProtocol": permission["IpProtocol"]}
        if permission["IpProtocol"] != "-1":
            base |= {"FromPort": permission.get("FromPort"), "ToPort": permission.get("ToPort")}
        sources = (
            [{"CidrIp": r["CidrIp"], "Description": r.get("Description")}
             for r in permission.get("IpRanges", [])]
            + [{"CidrIpv6": r["CidrIpv6"], "Description": r.get("Description")}
               for r in permission.get("Ipv6Ranges", [])]
            + [{f"{peer}SecurityGroupId": p["GroupId"], "Description": p.get("Description")}
               for p in permission.get("UserIdGroupPairs", [])]
            + [{f"{peer}PrefixListId": p["PrefixListId"], "Description": p.get("Description")}
               for p in permission.get("PrefixListIds", [])]
        )  # fmt: skip
        # a rule's Description is read: None when it has none
        rules += [_present(base) | source for source in sources]
    return rules


def _group(region: str, group_id: str) -> dict[str, Any] | None:
    ec2 = _client("ec2", region)
    return _described(
        lambda: ec2.describe_security_groups(GroupIds=[group_id]),
        "SecurityGroups",
        gone="InvalidGroup.NotFound",
    )


def security_group(region: str, group_id: str | None, _: dict[str, Any]) -> dict[str, Any] | None:
    group = _group(region, str(group_id))
    if group is None:
        return None
    return {
        "GroupDescription": group["Description"],
        "VpcId": group.get("VpcId"),
        "SecurityGroupIngress": _rules(group.get("IpPermissions", []), egress=False),
        "SecurityGroupEgress": _rules(group.get("IpPermissionsEgress", []), egress=True),
    }


_IDENTITY = (
    "IpProtocol", "FromPort", "ToPort", "CidrIp", "CidrIpv6", "SourceSecurityGroupId",
    "SourcePrefixListId", "DestinationSecurityGroupId", "DestinationPrefixListId",
)  # fmt: skip


def _rule(egress: bool) -> Reader:
    """A standalone rule: the group's rule with the same protocol, ports and peer (None:
    revoked, or its group gone)."""

    def read(region: str, _: str | None, expected: dict[str, Any]) -> dict[str, Any] | None:
        group = _group(region, str(expected["GroupId"]))
        if group is None:
            return None
        listed = group.get("IpPermissionsEgress" if egress else "IpPermissions", [])
        for rule in _rules(listed, egress=egress):
            if all(str(rule.get(k)) == str(expected.get(k)) for k in _IDENTITY):
                return rule | {"GroupId": group["GroupId"]}
        return None

    return read


def target_group(region: str, arn: str | None, _: dict[str, Any]) -> dict[str, Any] | None:
    elbv2 = _client("elbv2", region)
    group = _described(
        lambda: elbv2.describe_target_groups(TargetGroupArns=[str(arn)]),
        "TargetGroups",
        gone="TargetGroupNotFound",
    )
    if group is None:
        return None
    keys = (
        "Port", "Protocol", "ProtocolVersion", "VpcId", "TargetType", "IpAddressType",
        "HealthCheckEnabled", "HealthCheckPath", "HealthCheckPort", "HealthCheckProtocol",
        "HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds", "HealthyThresholdCount",
        "UnhealthyThresholdCount", "Matcher",
    )  # fmt: skip
    return _present({key: group.get(key) for key in keys} | {"Name": group["TargetGroupName"]})


def listener(region: str, arn: str | None, _: dict[str, Any]) -> dict[str, Any] | None:
    elbv2 = _client("elbv2", region)
    described = _described(
        lambda: elbv2.describe_listeners(ListenerArns=[str(arn)]),
        "Listeners",
        gone="ListenerNotFound",
    )
    if described is None:
        return None
    keys = ("LoadBalancerArn", "Port", "Protocol", "SslPolicy", "Certificates", "DefaultActions")
    return _present({key: described.get(key) for key in keys})


def load_balancer(region: str, arn: str | None, _: dict[str, Any]) -> dict[str, Any] | None:
    elbv2 = _client("elbv2", region)
    balancer = _described(
        lambda: elbv2.describe_load_balancers(LoadBalancerArns=[str(arn)]),
        "LoadBalancers",
        gone="LoadBalancerNotFound",
    )
    if balancer is None:
        return None
    return _present({
        "Name": balancer["LoadBalancerName"],
        "Scheme": balancer.get("Scheme"),
        "Type": balancer.get("Type"),
        "IpAddressType": balancer.get("IpAddressType"),
        "SecurityGroups": balancer.get("SecurityGroups", []),
        "Subnets": [zone["SubnetId"] for zone in balancer.get("AvailabilityZones", [])],
    })  # fmt: skip


READERS: dict[str, Reader] = {
    "AWS::AutoScaling::AutoScalingGroup": auto_scaling_group,
    "AWS::EC2::SecurityGroup": security_group,
    "AWS::EC2::SecurityGroupIngress": _rule(egress=False),
    "AWS::EC2::SecurityGroupEgress": _rule(egress=True),
    "AWS::ElasticLoadBalancingV2::TargetGroup": target_group,
    "AWS::ElasticLoadBalancingV2::Listener": listener,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": load_balancer,
}
