"""ImmutableFleet: hardened slots, a weighted listener, controller-owned state, alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from phoenix.config.environment import EnvironmentConfig
from tests.conftest import ChangedSandbox, SynthesizedApp

DYNAMIC_REFERENCE = "{{resolve:ssm:"


def _template(synthesized: SynthesizedApp, environment: str) -> Template:
    return Template.from_json(synthesized.template(f"phoenix-{environment}"))


def _resources(template: Template, kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template.find_resources(kind).values()]


def _groups_by_name(template: Template) -> dict[str, dict[str, Any]]:
    return {
        group["AutoScalingGroupName"]: group
        for group in _resources(template, "AWS::AutoScaling::AutoScalingGroup")
    }


@pytest.mark.parametrize(
    ("fleet", "slots"),
    [("web", {"blue", "green"}), ("api", {"blue", "green"}), ("worker", {"blue"})],
)
def test_each_strategy_gets_its_slots(
    synthesized: SynthesizedApp, fleet: str, slots: set[str]
) -> None:
    # canary and blue_green have two slots; rolling refreshes one slot in place
    names = set(_groups_by_name(_template(synthesized, "production")))
    assert {
        n.rsplit("-", 1)[1] for n in names if n.startswith(f"phoenix-production-{fleet}-")
    } == slots


def test_instances_require_imdsv2_with_hop_limit_1_and_have_no_key_or_public_address(
    synthesized: SynthesizedApp,
) -> None:
    for environment in ("sandbox", "production"):
        templates = _resources(_template(synthesized, environment), "AWS::EC2::LaunchTemplate")
        assert templates
        for launch_template in templates:
            data = launch_template["LaunchTemplateData"]
            assert data["MetadataOptions"] == {
                "HttpTokens": "required",
                "HttpPutResponseHopLimit": 1,
            }
            assert "KeyName" not in data
            assert data["Monitoring"] == {"Enabled": True}
            assert all(not nic["AssociatePublicIpAddress"] for nic in data["NetworkInterfaces"])


def test_root_volume_is_gp3_encrypted_with_the_environment_key(synthesized: SynthesizedApp) -> None:
    template = _template(synthesized, "sandbox")
    (key_id,) = template.find_resources("AWS::KMS::Key")
    for launch_template in _resources(template, "AWS::EC2::LaunchTemplate"):
        (root,) = launch_template["LaunchTemplateData"]["BlockDeviceMappings"]
        assert root["Ebs"]["Encrypted"] is True
        assert root["Ebs"]["VolumeType"] == "gp3"
        assert root["Ebs"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_the_key_lets_auto_scaling_launch_encrypted_volumes(synthesized: SynthesizedApp) -> None:
    (key,) = _resources(_template(synthesized, "sandbox"), "AWS::KMS::Key")
    statements = {s.get("Sid"): s for s in key["KeyPolicy"]["Statement"]}
    grant = statements["AutoScalingEncryptedVolumeGrants"]
    assert grant["Action"] == "kms:CreateGrant"
    assert grant["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    assert "AWSServiceRoleForAutoScaling" in json.dumps(grant["Condition"]["ArnEquals"])


def test_no_security_group_admits_ssh_and_instances_admit_only_the_load_balancer(
    synthesized: SynthesizedApp,
) -> None:
    template = _template(synthesized, "production")
    rules = [
        rule
        for group in _resources(template, "AWS::EC2::SecurityGroup")
        for rule in group.get("SecurityGroupIngress", [])
    ] + _resources(template, "AWS::EC2::SecurityGroupIngress")
    for rule in rules:
        assert not rule["FromPort"] <= 22 <= rule["ToPort"], rule
    instance_rules = [
        rule
        for rule in _resources(template, "AWS::EC2::SecurityGroupIngress")
        if "InstanceSecurityGroup" in json.dumps(rule["GroupId"])
    ]
    assert instance_rules
    for rule in instance_rules:
        assert "LoadBalancerSecurityGroup" in json.dumps(rule["SourceSecurityGroupId"])
        assert rule["FromPort"] == rule["ToPort"] == 80


def test_internal_load_balancers_admit_only_their_vpc(
    synthesized: SynthesizedApp, environment_configs: dict[str, EnvironmentConfig]
) -> None:
    template = _template(synthesized, "production")
    cidr = environment_configs["production"].network.cidr
    internal = [
        lb
        for lb in _resources(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
        if lb["Scheme"] == "internal"
    ]
    assert len(internal) == 2  # api and worker
    open_to = {
        rule["CidrIp"]
        for group in _resources(template, "AWS::EC2::SecurityGroup")
        for rule in group.get("SecurityGroupIngress", [])
        if "CidrIp" in rule
    }
    assert open_to == {"0.0.0.0/0", cidr}  # web is internet-facing


def test_instances_run_in_private_subnets_with_elb_health_checks_and_rebirth(
    synthesized: SynthesizedApp, environment_configs: dict[str, EnvironmentConfig]
) -> None:
    web = environment_configs["sandbox"].fleets[0]
    for group in _groups_by_name(_template(synthesized, "sandbox")).values():
        assert group["HealthCheckType"] == "ELB"
        assert group["HealthCheckGracePeriod"] == web.health_check.grace_period_seconds
        assert group["CapacityRebalance"] is True
        assert group["MaxInstanceLifetime"] == web.max_instance_lifetime_days * 86400
        assert group["InstanceMaintenancePolicy"] == {
            "MinHealthyPercentage": 100,
            "MaxHealthyPercentage": 200,
        }
        assert group["MetricsCollection"] == [{"Granularity": "1Minute"}]
        assert all("PrivateSubnet" in json.dumps(s) for s in group["VPCZoneIdentifier"])


def test_load_balancer_drops_bad_headers_logs_access_and_is_protected_in_production(
    synthesized: SynthesizedApp,
) -> None:
    for environment, protected in (("sandbox", "false"), ("production", "true")):
        for balancer in _resources(
            _template(synthesized, environment), "AWS::ElasticLoadBalancingV2::LoadBalancer"
        ):
            attributes = {a["Key"]: a["Value"] for a in balancer["LoadBalancerAttributes"]}
            assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
            assert attributes["access_logs.s3.enabled"] == "true"
            assert attributes["deletion_protection.enabled"] == protected


def test_access_log_bucket_is_encrypted_private_and_expires_logs(
    synthesized: SynthesizedApp, environment_configs: dict[str, EnvironmentConfig]
) -> None:
    template = _template(synthesized, "production")
    days = environment_configs["production"].access_logs_retention_days
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": Match.object_like({"BlockPublicAcls": True}),
            "LifecycleConfiguration": {
                "Rules": Match.array_with([Match.object_like({"ExpirationInDays": days})])
            },
        },
    )


def test_target_groups_take_health_checks_from_config(changed_sandbox: ChangedSandbox) -> None:
    template = _template(changed_sandbox.synthesized, "sandbox")
    health = changed_sandbox.config.fleets[0].health_check
    groups = _resources(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert len(groups) == 2
    for group in groups:
        assert group["HealthCheckPath"] == "/ready" == health.path
        assert group["HealthCheckIntervalSeconds"] == 10
        assert group["HealthyThresholdCount"] == health.healthy_threshold
        assert group["UnhealthyThresholdCount"] == health.unhealthy_threshold
        attributes = {a["Key"]: a["Value"] for a in group["TargetGroupAttributes"]}
        assert attributes["deregistration_delay.timeout_seconds"] == str(
            health.deregistration_delay_seconds
        )


def test_http_when_no_certificate_https_with_redirect_when_there_is_one(
    synthesized: SynthesizedApp, changed_sandbox: ChangedSandbox
) -> None:
    plain = _resources(_template(synthesized, "sandbox"), "AWS::ElasticLoadBalancingV2::Listener")
    assert [(listener["Port"], listener["Protocol"]) for listener in plain] == [(80, "HTTP")]

    secure = _resources(
        _template(changed_sandbox.synthesized, "sandbox"), "AWS::ElasticLoadBalancingV2::Listener"
    )
    by_port = {listener["Port"]: listener for listener in secure}
    assert by_port[443]["Protocol"] == "HTTPS"
    assert by_port[443]["Certificates"] == [
        {"CertificateArn": changed_sandbox.config.fleets[0].certificate_arn}
    ]
    assert by_port[80]["DefaultActions"][0]["Type"] == "redirect"
    assert by_port[80]["DefaultActions"][0]["RedirectConfig"]["Port"] == "443"


def test_instance_profile_is_for_session_manager_and_the_cloudwatch_agent(
    synthesized: SynthesizedApp,
) -> None:
    roles = _resources(_template(synthesized, "sandbox"), "AWS::IAM::Role")
    (instance_role,) = [r for r in roles if r.get("Description") == "phoenix sandbox/web instances"]
    policies = json.dumps(instance_role["ManagedPolicyArns"])
    assert "AmazonSSMManagedInstanceCore" in policies
    assert "CloudWatchAgentServerPolicy" in policies


def test_active_slot_scales_on_requests_per_target(
    synthesized: SynthesizedApp, environment_configs: dict[str, EnvironmentConfig]
) -> None:
    web = environment_configs["sandbox"].fleets[0]
    policies = _resources(_template(synthesized, "sandbox"), "AWS::AutoScaling::ScalingPolicy")
    assert len(policies) == 2  # each slot scales on its own traffic
    for policy in policies:
        tracking = policy["TargetTrackingConfiguration"]
        assert tracking["TargetValue"] == web.target_requests_per_minute
        assert (
            tracking["PredefinedMetricSpecification"]["PredefinedMetricType"]
            == "ALBRequestCountPerTarget"
        )
    # Nothing suspends scaling: CloudFormation never rolls instances itself (a rolling or
    # replacing update policy suspends processes while it runs; releases do the rolling).
    template = _template(synthesized, "sandbox")
    for group in template.find_resources("AWS::AutoScaling::AutoScalingGroup").values():
        assert set(group.get("UpdatePolicy", {})) <= {"AutoScalingScheduledAction"}
        assert "SuspendProcesses" not in json.dumps(group)


@pytest.mark.parametrize("environment", ["sandbox", "production"])
def test_alarm_thresholds_come_from_config(
    synthesized: SynthesizedApp, environment_configs: dict[str, EnvironmentConfig], environment: str
) -> None:
    config = environment_configs[environment]
    alarms = {
        a["AlarmName"]: a
        for a in _resources(_template(synthesized, environment), "AWS::CloudWatch::Alarm")
    }
    for fleet in config.fleets:
        scopes = [*fleet.slots, None]
        for scope in scopes:
            prefix = f"phoenix-{environment}-{fleet.name}" + (f"-{scope}" if scope else "")
            assert alarms[f"{prefix}-5xx-rate"]["Threshold"] == fleet.alarms.error_rate_percent
            assert (
                alarms[f"{prefix}-p99-latency"]["Threshold"] == fleet.alarms.p99_latency_ms / 1000
            )
            assert alarms[f"{prefix}-unhealthy-hosts"]["Threshold"] == fleet.alarms.unhealthy_hosts
            for what in ("5xx-rate", "p99-latency", "unhealthy-hosts"):
                alarm = alarms[f"{prefix}-{what}"]
                assert alarm["EvaluationPeriods"] == fleet.alarms.evaluation_periods
                assert alarm["TreatMissingData"] == "notBreaching"
                # no raw alarm JSON for people: EventBridge rolls back and tells them
                # in text (phoenix/platform/notifications.py)
                assert "AlarmActions" not in alarm
                assert "OKActions" not in alarm
    expected = sum(3 * (len(f.slots) + 1) for f in config.fleets)
    # (and the environment's own, `phoenix-<env>--releases-failed`, no fleet's)
    fleets_alarms = [n for n in alarms if n.startswith(f"phoenix-{environment}-")]
    assert (
        len([n for n in fleets_alarms if not n.startswith(f"phoenix-{environment}--")]) == expected
    )


def test_error_rate_alarm_divides_target_5xx_by_requests(synthesized: SynthesizedApp) -> None:
    alarms = {
        a["AlarmName"]: a
        for a in _resources(_template(synthesized, "sandbox"), "AWS::CloudWatch::Alarm")
    }
    metrics = alarms["phoenix-sandbox-web-green-5xx-rate"]["Metrics"]
    expression = next(m["Expression"] for m in metrics if "Expression" in m)
    assert expression == "IF(requests > 0, 100 * FILL(errors, 0) / requests, 0)"
    names = {m["Id"]: m["MetricStat"]["Metric"]["MetricName"] for m in metrics if "MetricStat" in m}
    assert names == {"errors": "HTTPCode_Target_5XX_Count", "requests": "RequestCount"}
    for metric in metrics:
        if "MetricStat" in metric:
            dimensions = {d["Name"] for d in metric["MetricStat"]["Metric"]["Dimensions"]}
            assert dimensions == {"LoadBalancer", "TargetGroup"}


def test_changed_thresholds_reach_the_alarms(changed_sandbox: ChangedSandbox) -> None:
    alarms = {
        a["AlarmName"]: a
        for a in _resources(
            _template(changed_sandbox.synthesized, "sandbox"), "AWS::CloudWatch::Alarm"
        )
    }
    assert alarms["phoenix-sandbox-web-blue-5xx-rate"]["Threshold"] == 1.5
    assert alarms["phoenix-sandbox-web-p99-latency"]["Threshold"] == 0.25
